//! `memset` and `memcpy` for the whole kernel: unrolled 8-byte moves
//! instead of `compiler_builtins`' `rep stosq` / `rep movsq`.
//!
//! Under TCG (QEMU 7.2) a `rep` string instruction runs one iteration per
//! execution of its translation block: each 8 bytes pay a block's entry
//! (its exit-request check), the `rcx` test and the chained jump back,
//! besides the store. Frame zeroing alone ran 81 million `rep stosq`
//! iterations in 6 fuzz sequences (the profile in the commit message). A
//! loop of eight plain stores per 64 bytes runs as one block per 64 bytes.
//!
//! These are written in assembly, not Rust: LLVM would recognize a Rust
//! loop that stores bytes as `memset` and compile it to a call to itself.
//! They are strong definitions; `compiler_builtins`' are weak, so the
//! linker takes these. `memmove` and `memcmp` stay `compiler_builtins`'.

use core::arch::global_asm;

global_asm!(
    r#"
// The loop memset and memcpy share, after their own start (r9 = dst, the
// answer): rdx bytes at rdi (and at rsi, with `src=1`) in steps of 64
// bytes while 64 are left, then of 8, then of 1; each step is the macro
// `\op\()_64`, `\op\()_8` or `\op\()_1`, which only moves the bytes (the
// loop advances the pointers).
.macro mem_steps op, src=0
    cmp rdx, 64
    jb 2f
1:
    \op\()_64
.if \src
    add rsi, 64
.endif
    add rdi, 64
    sub rdx, 64
    cmp rdx, 64
    jae 1b
2:
    cmp rdx, 8
    jb 3f
    \op\()_8
.if \src
    add rsi, 8
.endif
    add rdi, 8
    sub rdx, 8
    jmp 2b
3:
    test rdx, rdx
    jz 4f
    \op\()_1
.if \src
    inc rsi
.endif
    inc rdi
    dec rdx
    jmp 3b
4:
    mov rax, r9
    ret
.endm

// memset's steps: the byte in every byte of rax.
.macro memset_64
.irp off, 0, 8, 16, 24, 32, 40, 48, 56
    mov [rdi + \off], rax
.endr
.endm
.macro memset_8
    mov [rdi], rax
.endm
.macro memset_1
    mov [rdi], al
.endm

// memcpy's steps: the 64 bytes in two halves of four loads, then four
// stores.
.macro memcpy_64
.irp half, 0, 32
    mov rax, [rsi + \half]
    mov rcx, [rsi + \half + 8]
    mov r8, [rsi + \half + 16]
    mov r10, [rsi + \half + 24]
    mov [rdi + \half], rax
    mov [rdi + \half + 8], rcx
    mov [rdi + \half + 16], r8
    mov [rdi + \half + 24], r10
.endr
.endm
.macro memcpy_8
    mov rax, [rsi]
    mov [rdi], rax
.endm
.macro memcpy_1
    mov al, [rsi]
    mov [rdi], al
.endm

    .text
    .global memset
    .type memset, @function
// memset(rdi: dst, esi: byte, rdx: len) -> rax: dst
memset:
    mov r9, rdi
    movzx eax, sil
    movabs r8, 0x0101010101010101
    imul rax, r8
    mem_steps memset
    .size memset, . - memset

    .global memcpy
    .type memcpy, @function
// memcpy(rdi: dst, rsi: src, rdx: len) -> rax: dst; the ranges do not
// overlap.
memcpy:
    mov r9, rdi
    mem_steps memcpy, 1
    .size memcpy, . - memcpy
    "#
);
