//! Input from users never panics the parser: arbitrary text, and mangled versions of the
//! examples, give a config or errors, and every error has a line inside the text.

use ferrolb_config::load;
use proptest::prelude::*;

const EXAMPLES: [&str; 3] = [
    include_str!("../../../config/communities.yaml"),
    include_str!("../../../config/ebgp-two-routers.yaml"),
    include_str!("../../../config/seed-configmap.yaml"),
];

fn check(text: &str) {
    if let Err(errors) = load(text) {
        let lines = text.lines().count().max(1) + 1;
        for e in errors.errors() {
            assert!(
                e.line >= 1 && e.line <= lines,
                "line {} outside 1..={lines}: {e}",
                e.line
            );
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        check(&text);
    }

    #[test]
    fn yaml_like_text_never_panics(text in "([-:\\[\\]{}&*|>!'\" #\n]|[a-z0-9.]{1,4}|  ){0,60}") {
        check(&text);
    }

    #[test]
    fn mangled_examples_never_panic(
        which in 0..EXAMPLES.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0..4u8, "[-:\\[\\]{} \n&*a-z0-9/.]"), 1..6),
    ) {
        let mut text: Vec<char> = EXAMPLES[which].chars().collect();
        for (at, op, s) in edits {
            let i = at.index(text.len().max(1)).min(text.len());
            match op {
                0 if i < text.len() => { text.remove(i); }
                1 => text.splice(i..i, s.chars()).for_each(drop),
                2 if i < text.len() => { text.truncate(i); }
                _ if i < text.len() => { text[i] = s.chars().next().unwrap_or(' '); }
                _ => {}
            }
        }
        check(&text.into_iter().collect::<String>());
    }
}
