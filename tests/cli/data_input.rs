//! Points of any width (`eval --samples S --reference R`): the generic scores, and the table
//! of bad inputs — each one line, exit status 1, nothing written.

use super::*;
use Setup::*;

/// Ten rows of three columns, a header line first.
const THREE: &[u8] =
    b"a,b,c\n0,0,0\n1,0,0\n0,1,0\n0,0,1\n1,1,0\n1,0,1\n0,1,1\n1,1,1\n2,0,0\n0,2,0\n";
/// Ten rows of two columns.
const TWO: &[u8] = b"0,0\n1,0\n0,1\n1,1\n2,0\n0,2\n2,2\n3,0\n0,3\n3,3\n";

/// Three columns, the last row's third cell `cell`.
fn with_cell(cell: &str) -> Vec<u8> {
    let mut bytes = THREE.to_vec();
    bytes.extend(format!("5,5,{cell}\n").bytes());
    bytes
}

/// A row of 17 numbers.
fn seventeen() -> Vec<u8> {
    (vec!["1"; 17].join(",") + "\n").into_bytes()
}

#[test]
fn every_bad_points_file_is_one_line_and_writes_nothing() {
    let case = |setup, args, message| Case {
        setup,
        args,
        code: 1,
        message,
        ..Case::default()
    };
    let cases = [
        case(
            &[File("s.csv", THREE), Make("r.csv", || with_cell("abc"))],
            &["eval", "--samples", "s.csv", "--reference", "r.csv"],
            "cannot read the reference: r.csv: line 12, column 3: \"abc\" is not a number",
        ),
        case(
            &[File("s.csv", THREE), File("r.csv", b"1,2,3\n4,5\n")],
            &["eval", "--samples", "s.csv", "--reference", "r.csv"],
            "r.csv: line 2: 2 column(s), expected 3",
        ),
        case(
            &[Make("s.csv", || with_cell("NaN")), File("r.csv", THREE)],
            &["eval", "--samples", "s.csv", "--reference", "r.csv"],
            "cannot read the samples: s.csv: line 12, column 3: \"NaN\" is not a finite number",
        ),
        case(
            &[File("s.csv", THREE), Make("r.csv", || with_cell("-inf"))],
            &[
                "eval",
                "--samples",
                "s.csv",
                "--reference",
                "r.csv",
                "--json",
            ],
            "r.csv: line 12, column 3: \"-inf\" is not a finite number",
        ),
        case(
            &[File("s.csv", THREE), File("r.csv", b"1e39,0,0\n")],
            &["eval", "--samples", "s.csv", "--reference", "r.csv"],
            "r.csv: line 1, column 1: \"1e39\" is not a finite number",
        ),
        case(
            &[File("s.csv", THREE), Make("r.csv", seventeen)],
            &["eval", "--samples", "s.csv", "--reference", "r.csv"],
            "r.csv: line 1: 17 columns; at most 16 are read",
        ),
        case(
            &[File("s.csv", TWO), File("r.csv", THREE)],
            &["eval", "--samples", "s.csv", "--reference", "r.csv"],
            "--reference has 3 columns, the samples 2",
        ),
        case(
            &[File("s.csv", THREE), File("r.csv", b"1,2,3\n4,5,6\n")],
            &["eval", "--samples", "s.csv", "--reference", "r.csv"],
            "reference: 2 point(s); at least 6 are needed",
        ),
        case(
            &[File("s.csv", THREE), File("r.csv", b"x,y,z\n")],
            &["eval", "--samples", "s.csv", "--reference", "r.csv"],
            "r.csv: no data rows",
        ),
        // Points of another width than the model's D.
        case(
            &[
                Make("m.tdm", || model_bytes().to_vec()),
                File("x.csv", THREE),
            ],
            &[
                "sample", "--model", "m.tdm", "--x-init", "x.csv", "--out", "s.csv",
            ],
            "--x-init has 3 columns, the model's data 2",
        ),
        case(
            &[
                Make("m.tdm", || model_bytes().to_vec()),
                File("p.csv", THREE),
            ],
            &[
                "score", "--model", "m.tdm", "--points", "p.csv", "--out", "s.csv",
            ],
            "--points has 3 columns, the model's data 2",
        ),
        case(
            &[File("s.csv", THREE)],
            &["eval", "--samples", "s.csv", "--data", "moons"],
            "--data moons has 2 columns, the samples 3",
        ),
        // An unknown name is a usage error (exit 2), as every option's bad value is.
        Case {
            code: 2,
            ..case(
                &[File("s.csv", TWO)],
                &["eval", "--samples", "s.csv", "--data", "nosuch"],
                "unknown data set 'nosuch' (known: swissroll, circles, rings, moons, \
                 8gaussians, pinwheel, 2spirals, checkerboard, line, cos)",
            )
        },
    ];
    for case in &cases {
        run_case(case);
    }
}

#[test]
fn eval_reference_prints_the_generic_scores_and_the_roll_keeps_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("s.csv"), THREE).unwrap();
    std::fs::write(d.join("r.csv"), THREE).unwrap();
    let json = ok(
        d,
        &[
            "eval",
            "--samples",
            "s.csv",
            "--reference",
            "r.csv",
            "--json",
        ],
    );
    // The same points: every point in its own ball, no distance between the sets.
    for (key, want) in [
        ("samples", 10.0),
        ("reference", 10.0),
        ("dim", 3.0),
        ("energy", 0.0),
        ("sliced_w2", 0.0),
        ("precision", 1.0),
        ("recall", 1.0),
        ("coverage", 1.0),
        ("k", 5.0),
        ("projections", 256.0),
    ] {
        assert_eq!(json_number(&json, key), want, "{key}: {json}");
    }
    let table = ok(d, &["eval", "--samples", "s.csv", "--reference", "r.csv"]);
    for line in [
        "sliced W2",
        "MMD²",
        "energy",
        "precision",
        "recall",
        "density",
        "coverage",
    ] {
        assert!(table.contains(line), "{line}: {table}");
    }
    assert!(!table.contains("mean distance"), "{table}");

    // Without --reference, Swiss-roll samples keep their curve scores and add the generic
    // ones against fresh true samples.
    csv::write_points(
        &d.join("true.csv"),
        &data::true_samples(data::DataSet::SwissRoll, 500, 7),
    )
    .unwrap();
    let json = ok(d, &["eval", "--samples", "true.csv", "--json"]);
    let want = tinyddpm::eval::evaluate(
        &data::true_samples(data::DataSet::SwissRoll, 500, 7),
        &data::true_samples(data::DataSet::SwissRoll, 500, 0),
    )
    .unwrap();
    assert!(
        json.starts_with(&format!("{{{},", want.json_fields())),
        "{json}"
    );
    assert_eq!(json_number(&json, "scored_reference"), 500.0);
    assert!(json_number(&json, "precision") > 0.9, "{json}");
    let table = ok(d, &["eval", "--samples", "true.csv"]);
    assert!(
        table.contains("coverage KS") && table.contains("precision"),
        "{table}"
    );
}
