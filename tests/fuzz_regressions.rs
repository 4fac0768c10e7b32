//! Replays every kept fuzz input on the stable toolchain: the seed corpus (`fuzz/corpus/NAME`) and each
//! input that once crashed a target (`fuzz/regressions/NAME`, kept after the fix). A panic on any of
//! them is a regression; `scripts/fuzz.sh` is where new inputs are found.

use l2l_fuzz_harness::TARGETS;
use l2l_system_tests::workspace_root;
use std::panic::{catch_unwind, AssertUnwindSafe};

#[test]
fn every_kept_fuzz_input_is_handled_without_a_panic() {
    let fuzz = workspace_root().join("fuzz");
    let mut failures = Vec::new();
    for target in TARGETS {
        let mut replayed = 0;
        for folder in ["corpus", "regressions"] {
            let dir = fuzz.join(folder).join(target.name);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                assert_eq!(
                    folder,
                    "regressions",
                    "{} is missing: the seed corpus of `{}`",
                    dir.display(),
                    target.name
                );
                continue;
            };
            for entry in entries {
                let path = entry.expect("listing kept fuzz inputs").path();
                let input = std::fs::read(&path).expect("reading a kept fuzz input");
                if catch_unwind(AssertUnwindSafe(|| (target.run)(&input))).is_err() {
                    failures.push(path.display().to_string());
                }
                replayed += 1;
            }
        }
        assert!(replayed > 0, "no kept inputs for fuzz target `{}`", target.name);
    }
    assert!(failures.is_empty(), "fuzz inputs that panic: {failures:#?}");
}
