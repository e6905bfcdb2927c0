//! metallb.io objects as multi-document YAML (IPAddressPool, BGPPeer, BGPAdvertisement, Community, BFDProfile):
//! reading and translating never panic, and every error and warning renders.
#![no_main]

use ferrolb_config::metallb::{Secrets, parse_documents, translate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_documents(text) {
        Ok(objects) => {
            let translation = translate(&objects, &Secrets::default());
            if let Err(errors) = &translation.config {
                let _ = errors.to_string();
            }
            for warning in &translation.warnings {
                let _ = format!("{}: {}", warning.object, warning.message);
            }
        }
        Err(errors) => {
            let _ = errors.to_string();
        }
    }
});
