# The two commands of the README, and the pieces they are made of. Every cargo call goes through
# scripts/cargo.sh, which installs libtorch (PyTorch 2.13.0 from PyPI) once when it is missing.

.PHONY: quickstart test build bench clean-runs

## Run the main job on the embedded default: the three experiments, small, on generated data.
quickstart: build
	./target/debug/l2l-host run configs/quickstart.toml

## Build everything, then run the whole test suite (unit, ABI, CLI and out-of-tree plugin tests).
test: build
	scripts/cargo.sh test --workspace

## Build the host and every plugin.
build:
	scripts/cargo.sh build --workspace

## Measure the plugin-boundary overhead (release build).
bench:
	scripts/cargo.sh build --release --workspace
	scripts/cargo.sh bench -p l2l-system-tests --bench abi_overhead

clean-runs:
	rm -rf runs
