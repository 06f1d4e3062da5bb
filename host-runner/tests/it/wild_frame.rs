//! The kernel refuses a frame outside the RAM the VMM may use instead of
//! writing over itself: a guest built with `inject-wild-frame` (a new page
//! table's entry names the frame after the PML4, a frame of the kernel
//! image) stops at the first table it makes, with a panic report naming
//! that frame, and the kernel's own tables stay intact until then.
//!
//! Needs `qemu-system-x86_64` and the guest's toolchain (the injected build
//! is made here, into its own target directory).

use host_runner::rpc::RpcError;
use host_runner::{QemuExit, Vm};
use protocol::{Privilege, Request, Response};

#[tokio::test]
async fn a_wild_table_frame_is_refused_and_reported() {
    let config = crate::common::injected_config("inject-wild-frame");
    let mut vm = Vm::boot(&config).await.expect("boot");
    let hello = vm.hello().await.expect("hello");
    // The frame the bug names is the kernel's own.
    let wild = hello.page_table_root + 4096;
    assert!(
        hello.kernel_image.start <= wild && wild < hello.kernel_image.end,
        "frame {wild:#x} is not in the kernel image {:x?}",
        hello.kernel_image
    );
    // Requests that make no table still work.
    let query = Request::Query {
        addr: 0x1234_5000,
        pages: 1,
        privilege: Privilege::User,
    };
    assert!(matches!(
        vm.call(query).await.expect("query answered"),
        Response::Pages(_)
    ));
    let map = Request::map_writable(0x1234_5000, 1, Privilege::User);
    match vm.call(map).await {
        Err(RpcError::GuestPanic { report, exit }) => {
            let want = format!("VMM bug: frame {wild:#x} refused for writing");
            assert!(report.message.contains(&want), "{report:?}");
            assert_eq!(exit, QemuExit::Panic);
        }
        other => panic!("the kernel let the VMM write its own frame: {other:?}"),
    }
}
