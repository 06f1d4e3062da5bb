//! Unit tests of exit statuses and the binary search (argv: `command.rs`).

use std::path::Path;
use std::process::ExitStatus;

use super::*;

#[test]
fn exit_codes() {
    assert_eq!(QemuExit::from_code(33, false), QemuExit::Shutdown);
    assert_eq!(QemuExit::from_code(65, false), QemuExit::Panic);
    assert_eq!(QemuExit::from_code(67, true), QemuExit::Exception);
    assert_eq!(QemuExit::from_code(0, true), QemuExit::Quit);
    assert_eq!(QemuExit::from_code(0, false), QemuExit::TripleFault);
    assert_eq!(QemuExit::from_code(1, false), QemuExit::Failed(1));
    assert!(QemuExit::Shutdown.is_success());
    assert!(QemuExit::Quit.is_success());
    for e in [
        QemuExit::Panic,
        QemuExit::Exception,
        QemuExit::TripleFault,
        QemuExit::Failed(1),
        QemuExit::Signal(9),
        QemuExit::Running,
    ] {
        assert!(!e.is_success(), "{e}");
    }
    assert_eq!(QemuExit::Panic.code(), Some(65));
    assert_eq!(QemuExit::Signal(9).code(), None);
}

#[test]
fn exit_status_from_process() {
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        QemuExit::from_status(ExitStatus::from_raw(33 << 8), false),
        QemuExit::Shutdown
    );
    assert_eq!(
        QemuExit::from_status(ExitStatus::from_raw(9), false),
        QemuExit::Signal(9)
    );
}

#[test]
fn path_search() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("qemu-system-x86_64");
    std::fs::write(&exe, "#!/bin/sh\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::join_paths(["/nonexistent".as_ref(), dir.path()]).unwrap();
    assert_eq!(
        search_path(QEMU_BINARY, Some(&path)),
        None,
        "not executable"
    );
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(search_path(QEMU_BINARY, Some(&path)), Some(exe));
    assert_eq!(search_path(QEMU_BINARY, None), None);
}

#[test]
fn missing_qemu_names_the_package() {
    let err = find_qemu(Some(Path::new("/nonexistent/qemu"))).unwrap_err();
    assert!(err.to_string().contains("apt-get install qemu-system-x86"));
}

#[test]
fn shell_quoting() {
    assert_eq!(
        shell_words(&["-a".into(), "b c".into(), "it's".into()]),
        r"-a 'b c' 'it'\''s'"
    );
}

#[test]
fn a_qemu_path_that_is_not_an_executable_file_says_what_it_is() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let said = |p: &Path| find_qemu(Some(p)).unwrap_err().to_string();
    let text = said(dir.path());
    assert!(
        text.contains(&format!("--qemu {} is a directory", dir.path().display())),
        "{text}"
    );
    let gone = dir.path().join("gone");
    assert!(said(&gone).contains("does not exist"), "{}", said(&gone));
    let plain = dir.path().join("plain");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(
        said(&plain).contains("is not executable"),
        "{}",
        said(&plain)
    );
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(find_qemu(Some(&plain)).unwrap(), plain);
}
