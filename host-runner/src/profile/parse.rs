//! Reading the monitor's answers: `info registers` (RIP, RBP, whether the
//! CPU is halted) and `x /2gx ADDR` (two 64-bit words).

/// What a sample needs of the CPU's registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Registers {
    pub rip: u64,
    pub rbp: u64,
    /// `HLT=1`: the CPU waits in `hlt` for an interrupt (the guest waits
    /// for the host).
    pub halted: bool,
}

/// The first `NAME=hex` value of `text` (a name at a word's start, so
/// `IP=` is not found inside `RIP=`).
fn field(text: &str, name: &str) -> Option<u64> {
    let key = format!("{name}=");
    let mut from = 0;
    while let Some(at) = text[from..].find(&key).map(|i| i + from) {
        let starts_word = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        if starts_word {
            let value = &text[at + key.len()..];
            let end = value
                .find(|c: char| !c.is_ascii_hexdigit())
                .unwrap_or(value.len());
            return u64::from_str_radix(&value[..end], 16).ok();
        }
        from = at + key.len();
    }
    None
}

/// Reads `info registers`' answer (CPU 0's: the guest has one); `None`
/// when RIP, RBP or HLT is missing.
pub fn registers(text: &str) -> Option<Registers> {
    Some(Registers {
        rip: field(text, "RIP")?,
        rbp: field(text, "RBP")?,
        halted: field(text, "HLT")? == 1,
    })
}

/// Reads `x /2gx ADDR`'s answer (`ffff…: 0x0123… 0x4567…`): the two words,
/// or `None` when the memory cannot be read.
pub fn two_words(text: &str) -> Option<(u64, u64)> {
    let (_, values) = text.lines().next()?.split_once(": ")?;
    let mut words = values
        .split_whitespace()
        .map(|w| u64::from_str_radix(w.strip_prefix("0x")?, 16).ok());
    Some((words.next()??, words.next()??))
}

/// Whether `info status` says the guest is paused (by someone else: the
/// campaign while it reads guest memory).
pub fn paused(status: &str) -> bool {
    status.contains("VM status: paused")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `info registers` from QEMU 7.2 with the vmmfuzz guest (cut after
    /// the first registers that matter).
    const REGISTERS: &str = "\nCPU#0\n\
        RAX=00000000000000ff RBX=ffffffff80197e40 RCX=0000000000000001 RDX=00000000000003fd\n\
        RSI=0000000000000006 RDI=00000000000000a6 RBP=ffffffff80197c10 RSP=ffffffff80197bc0\n\
        R8 =0000000000000000 R9 =00000000000000ad R10=0000000000000001 R11=ffffffff801c8080\n\
        RIP=ffffffff80107b50 RFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0\n\
        ES =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]\n\
        CR0=80010011 CR2=0000000000000000 CR3=0000000000101000 CR4=00000020\n\
        DR6=00000000ffff0ff0 DR7=0000000000000400\n";

    #[test]
    fn rip_rbp_and_hlt_are_read() {
        assert_eq!(
            registers(REGISTERS),
            Some(Registers {
                rip: 0xffff_ffff_8010_7b50,
                rbp: 0xffff_ffff_8019_7c10,
                halted: false,
            })
        );
        let halted = REGISTERS.replace("HLT=0", "HLT=1");
        assert!(registers(&halted).unwrap().halted);
    }

    #[test]
    fn a_name_is_matched_at_a_word_start_only() {
        assert_eq!(field("EIP=5 RIP=7", "IP"), None);
        assert_eq!(field("XRIP=5 RIP=7", "RIP"), Some(7));
        assert_eq!(field("RBX=1", "RBP"), None);
    }

    #[test]
    fn registers_without_rip_or_hlt_are_none() {
        assert_eq!(registers("RBP=0000000000000001 HLT=0"), None);
        assert_eq!(registers(&REGISTERS.replace("HLT=0", "")), None);
        assert_eq!(registers(""), None);
    }

    #[test]
    fn two_words_or_none_where_memory_cannot_be_read() {
        assert_eq!(
            two_words("ffff800000000000: 0x03010102464c457f 0x0000000000000000\n"),
            Some((0x0301_0102_464c_457f, 0))
        );
        assert_eq!(two_words("ffffffff80000000: Cannot access memory\n"), None);
        assert_eq!(two_words("ffff800000000000: 0x0000000000000001\n"), None);
        assert_eq!(two_words(""), None);
    }

    #[test]
    fn paused_or_running() {
        assert!(paused("VM status: paused\n"));
        assert!(paused("VM status: paused (debug)\n"));
        assert!(!paused("VM status: running\n"));
    }
}
