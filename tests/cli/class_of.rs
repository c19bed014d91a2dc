//! Class adherence from the command line (`eval --samples S --class-of LABELLED --class K`):
//! samples at class K's cluster of a labelled CSV adhere fully, samples at another's not at
//! all, the generic scores are against class K's points only, and the bad inputs — a file
//! missing, a label that is no integer, a class the file lacks, samples of another width, a
//! label column the file lacks — are one line each, exit status 1, nothing written.

use super::table::{Case, Setup, run_case};
use super::*;
use Setup::*;

/// The three clusters' centres, far apart (each cluster spans less than 1 by 1).
const CENTRES: [[f32; 2]; 3] = [[0.0, 0.0], [50.0, 0.0], [0.0, 50.0]];

/// Point `i` of `n` around `centre`: a fixed jitter in [−0.5, 0.5]².
fn near(centre: [f32; 2], i: usize) -> [f32; 2] {
    let dx = (i * 7 % 11) as f32 / 10.0 - 0.5;
    let dy = (i * 5 % 13) as f32 / 12.0 - 0.5;
    [centre[0] + dx, centre[1] + dy]
}

/// A labelled CSV: a header `x,y,class`, then 30 points of each cluster, the classes
/// interleaved, each label written as `C` or `C.0`.
fn labelled() -> Vec<u8> {
    let mut text = String::from("x,y,class\n");
    for i in 0..30 {
        for (class, &centre) in CENTRES.iter().enumerate() {
            let [x, y] = near(centre, i);
            let label = match i % 2 {
                0 => format!("{class}"),
                _ => format!("{class}.0"),
            };
            text += &format!("{x},{y},{label}\n");
        }
    }
    text.into_bytes()
}

/// The same points with the label first and no header.
fn label_first() -> Vec<u8> {
    let text = String::from_utf8(labelled()).unwrap();
    let mut out = String::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        out += &format!("{},{},{}\n", fields[2], fields[0], fields[1]);
    }
    out.into_bytes()
}

/// 20 samples around `class`'s centre, other jitter than the labelled points'.
fn samples_at(class: usize) -> Vec<u8> {
    let mut text = String::from("x,y\n");
    for i in 0..20 {
        let [x, y] = near(CENTRES[class], i + 3);
        text += &format!("{},{}\n", x + 0.05, y - 0.05);
    }
    text.into_bytes()
}

/// The labelled CSV with one label `label`.
fn with_label(label: &str) -> Vec<u8> {
    let mut bytes = labelled();
    bytes.extend(format!("1,1,{label}\n").bytes());
    bytes
}

#[test]
fn samples_at_their_class_adhere_and_at_another_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("l.csv"), labelled()).unwrap();
    std::fs::write(d.join("first.csv"), label_first()).unwrap();
    std::fs::write(d.join("s1.csv"), samples_at(1)).unwrap();
    let eval = |class: &str, more: &[&str]| {
        let args = [
            "eval",
            "--samples",
            "s1.csv",
            "--class-of",
            "l.csv",
            "--class",
            class,
            "--json",
        ];
        ok(d, &[&args[..], more].concat())
    };
    let json = eval("1", &[]);
    for (key, want) in [
        ("samples", 20.0),
        ("class", 1.0),
        ("classes", 3.0),
        ("labelled", 90.0),
        ("reference", 30.0),
        ("neighbours", 10.0),
        ("assigned", 20.0),
        ("adherence", 1.0),
        ("scored_samples", 20.0),
        ("scored_reference", 30.0),
        ("dim", 2.0),
    ] {
        assert_eq!(json_number(&json, key), want, "{key}: {json}");
    }
    // Against class 1's points only: the samples are among them (against all three
    // clusters a third of the reference would be far from every sample).
    assert!(json_number(&json, "precision") > 0.9, "{json}");
    assert!(json_number(&json, "sliced_w2") < 0.5, "{json}");
    // The generic scores are those of `eval --reference` on class 1's points.
    let class_1: String = std::iter::once("x,y\n".to_string())
        .chain(
            String::from_utf8(labelled())
                .unwrap()
                .lines()
                .filter(|l| l.ends_with(",1") || l.ends_with(",1.0"))
                .map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n"),
        )
        .collect();
    std::fs::write(d.join("r1.csv"), class_1).unwrap();
    let reference = ok(
        d,
        &[
            "eval",
            "--samples",
            "s1.csv",
            "--reference",
            "r1.csv",
            "--json",
        ],
    );
    for key in [
        "sliced_w2",
        "mmd2",
        "energy",
        "precision",
        "recall",
        "coverage",
    ] {
        assert_eq!(
            json_number(&json, key),
            json_number(&reference, key),
            "{key}"
        );
    }

    // Asked for class 0 or 2: none adhere.
    for other in ["0", "2"] {
        let json = eval(other, &[]);
        assert_eq!(json_number(&json, "adherence"), 0.0, "{other}: {json}");
        assert_eq!(json_number(&json, "assigned"), 0.0, "{other}: {json}");
    }
    // The label column by name, by index, first without a header; another k.
    for more in [
        &["--label-column", "class"][..],
        &["--label-column", "2"],
        &["--neighbours", "3"],
    ] {
        let json = eval("1", more);
        assert_eq!(json_number(&json, "adherence"), 1.0, "{more:?}: {json}");
    }
    assert_eq!(
        json_number(&eval("1", &["--neighbours", "3"]), "neighbours"),
        3.0
    );
    let first = ok(
        d,
        &[
            "eval",
            "--samples",
            "s1.csv",
            "--class-of",
            "first.csv",
            "--label-column",
            "0",
            "--class",
            "1",
            "--json",
        ],
    );
    assert_eq!(first, json);

    // The table.
    let table = ok(
        d,
        &[
            "eval",
            "--samples",
            "s1.csv",
            "--class-of",
            "l.csv",
            "--class",
            "2",
        ],
    );
    for line in [
        "samples          20\n",
        "class            2 of C = 3 (30 points of it among 90 labelled points of l.csv, \
         labels in the last column)\n",
        "adherence        0.0000  (0 of the samples assigned to class 2",
        "10 nearest labelled points",
        "points of class 2 of l.csv",
        "sliced W2",
        "precision",
    ] {
        assert!(table.contains(line), "{line:?}: {table}");
    }

    // Too few samples for the generic scores: the adherence alone, and a note.
    std::fs::write(d.join("few.csv"), "x,y\n50,0\n50.1,0\n").unwrap();
    let args = [
        "eval",
        "--samples",
        "few.csv",
        "--class-of",
        "l.csv",
        "--class",
        "1",
    ];
    let table = ok(d, &args);
    assert!(table.contains("adherence        1.0000"), "{table}");
    assert!(
        table.contains("the generic scores need more than 5 samples"),
        "{table}"
    );
    let json = ok(d, &[&args[..], &["--json"]].concat());
    assert_eq!(json_number(&json, "adherence"), 1.0, "{json}");
    assert!(!json.contains("precision"), "{json}");
}

#[test]
fn every_bad_class_of_input_is_one_line_and_writes_nothing() {
    let case = |setup, args, message| Case {
        setup,
        args,
        code: 1,
        message,
        ..Case::default()
    };
    let both = &[Make("l.csv", labelled), Make("s.csv", || samples_at(1))][..];
    // `eval --samples s.csv --class-of l.csv --class` and the rest.
    let eval = |rest: &[&'static str]| -> &'static [&'static str] {
        let head = [
            "eval",
            "--samples",
            "s.csv",
            "--class-of",
            "l.csv",
            "--class",
        ];
        Box::leak([&head[..], rest].concat().into_boxed_slice())
    };
    let cases = [
        case(
            &[Make("s.csv", || samples_at(1))],
            &[
                "eval",
                "--samples",
                "s.csv",
                "--class-of",
                "nosuch.csv",
                "--class",
                "1",
            ],
            "cannot read --class-of: nosuch.csv: ",
        ),
        case(
            &[Make("l.csv", labelled)],
            &[
                "eval",
                "--samples",
                "nosuch.csv",
                "--class-of",
                "l.csv",
                "--class",
                "1",
            ],
            "cannot read the samples: nosuch.csv: ",
        ),
        case(
            &[
                Make("l.csv", || with_label("1.5")),
                Make("s.csv", || samples_at(1)),
            ],
            eval(&["1"]),
            "cannot read --class-of: l.csv: line 92: label \"1.5\" is not an integer from 0 \
             to 65535",
        ),
        case(
            &[
                Make("l.csv", || with_label("-2")),
                Make("s.csv", || samples_at(1)),
            ],
            eval(&["1"]),
            "l.csv: line 92: label \"-2\" is not an integer from 0 to 65535",
        ),
        case(
            &[
                Make("l.csv", || with_label("one")),
                Make("s.csv", || samples_at(1)),
            ],
            eval(&["1"]),
            "l.csv: line 92: label \"one\" is not an integer from 0 to 65535",
        ),
        case(
            both,
            eval(&["3"]),
            "--class 3: the labels of l.csv are 0 to 2 (C = 3)",
        ),
        case(
            both,
            eval(&["70000"]),
            "--class 70000: the labels of l.csv are 0 to 2 (C = 3)",
        ),
        case(
            &[Make("l.csv", labelled), File("s.csv", b"1,2,3\n4,5,6\n")],
            eval(&["1"]),
            "--class-of has 2 columns besides its labels, the samples 3",
        ),
        case(
            &[Make("l.csv", labelled), File("s.csv", b"1\n4\n")],
            eval(&["1"]),
            "--class-of has 2 columns besides its labels, the samples 1",
        ),
        case(
            both,
            eval(&["1", "--label-column", "kind"]),
            "l.csv: no column named \"kind\": the header line has none",
        ),
        case(
            both,
            eval(&["1", "--label-column", "5"]),
            "l.csv: line 2: 3 column(s), expected at least 6",
        ),
        case(
            &[
                Make("s.csv", || samples_at(1)),
                File("l.csv", b"x,y,class\n"),
            ],
            eval(&["0"]),
            "l.csv: no data rows",
        ),
        // Options that need --class-of, or that it rules out, and a k of 0: usage errors.
        Case {
            code: 2,
            ..case(
                both,
                &["eval", "--samples", "s.csv", "--class", "1"],
                "--class-of",
            )
        },
        Case {
            code: 2,
            ..case(
                both,
                &["eval", "--samples", "s.csv", "--class-of", "l.csv"],
                "--class",
            )
        },
        Case {
            code: 2,
            ..case(
                both,
                eval(&["1", "--reference", "s.csv"]),
                "cannot be used with",
            )
        },
        Case {
            code: 2,
            ..case(both, eval(&["1", "--neighbours", "0"]), "--neighbours")
        },
    ];
    for case in &cases {
        run_case(case);
    }
}

#[test]
fn eval_help_names_the_class_options() {
    let dir = tempfile::tempdir().unwrap();
    let help = ok(dir.path(), &["eval", "--help"]);
    for option in [
        "--class-of <FILE>",
        "--class <K>",
        "--label-column <N|NAME>",
        "--neighbours <K>",
    ] {
        assert!(help.contains(option), "{option}: {help}");
    }
}
