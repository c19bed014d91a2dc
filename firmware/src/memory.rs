//! Where the image's bytes went: section sizes from the linker's symbols, and the stack's
//! high-water mark from cortex-m-rt's `paint-stack`.

use cortex_m_rt::STACK_PAINT_VALUE;

// Symbols of cortex-m-rt's `link.x`. Only their addresses are used, never their contents, so
// declaring them `safe` is sound; an `extern` block is the only way to name a linker symbol.
#[allow(unsafe_code)]
unsafe extern "C" {
    safe static __vector_table: u32;
    safe static __etext: u32;
    safe static __srodata: u32;
    safe static __erodata: u32;
    safe static __sdata: u32;
    safe static __edata: u32;
    safe static __sbss: u32;
    safe static __ebss: u32;
    safe static __suninit: u32;
    safe static __euninit: u32;
    safe static _stack_start: u32;
    safe static _stack_end: u32;
}

fn addr(symbol: &'static u32) -> usize {
    core::ptr::from_ref(symbol).addr()
}

/// Bytes of each part of the image.
#[derive(Clone, Copy, Debug)]
pub struct Sections {
    /// `.vector_table` + `.text`.
    pub code: usize,
    /// `.rodata`: the weights, the step table and other constants.
    pub rodata: usize,
    /// `.data`: statics with initial values (RAM, with a copy in flash).
    pub data: usize,
    /// `.bss` and `.uninit`: zeroed or uninitialised statics (RAM).
    pub bss: usize,
}

impl Sections {
    /// Reads the linker's section boundaries.
    pub fn of_image() -> Self {
        Self {
            code: addr(&__etext) - addr(&__vector_table),
            rodata: addr(&__erodata) - addr(&__srodata),
            data: addr(&__edata) - addr(&__sdata),
            bss: addr(&__ebss) - addr(&__sbss) + addr(&__euninit) - addr(&__suninit),
        }
    }

    /// Bytes in flash: code, constants and the initial values of `.data`.
    pub fn flash(&self) -> usize {
        self.code + self.rodata + self.data
    }

    /// Statics in RAM.
    pub fn static_ram(&self) -> usize {
        self.data + self.bss
    }
}

/// Deepest stack use since reset, in bytes: the stack grows down from `_stack_start` and
/// cortex-m-rt painted everything down to `_stack_end`, so the lowest word that no longer holds
/// the paint marks the deepest point reached.
#[allow(unsafe_code)]
pub fn stack_high_water() -> usize {
    let (bottom, top) = (addr(&_stack_end), addr(&_stack_start));
    let mut word = bottom;
    while word < top {
        let p = core::ptr::with_exposed_provenance::<u32>(word);
        // SAFETY: `word` is 4-aligned (the linker script asserts `_stack_end % 4 == 0`) and lies
        // in [_stack_end, _stack_start), RAM that is always mapped. Below the first scrubbed
        // word no Rust object has ever lived, so nothing aliases it; a volatile read has no
        // side effect. Reading memory outside every Rust object is the only way to see the
        // paint, and `paint-stack` exists for exactly this.
        if unsafe { p.read_volatile() } != STACK_PAINT_VALUE {
            break;
        }
        word += 4;
    }
    top - word
}
