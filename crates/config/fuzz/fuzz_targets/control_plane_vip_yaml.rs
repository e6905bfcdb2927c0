//! The control-plane-vip file: reading never panics and every error renders.
#![no_main]

use ferrolb_config::ControlPlaneVip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(errors) = ControlPlaneVip::from_yaml(text) {
        let _ = errors.to_string();
    }
});
