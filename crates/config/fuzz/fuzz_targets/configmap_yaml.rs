//! The ConfigMap's `config` key (MetalLB v0.12 YAML with ferrolb's additions): reading never panics, every error
//! renders, and a configuration that reads can be converted to metallb.io objects without panicking.
#![no_main]

use ferrolb_config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_yaml(text) {
        Ok(config) => {
            let _ = ferrolb_config::metallb::convert(&config, "metallb-system");
        }
        Err(errors) => {
            let _ = errors.to_string();
        }
    }
});
