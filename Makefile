# The two commands of the README, and the pieces they are made of. Every cargo call goes through
# scripts/cargo.sh, which installs libtorch (PyTorch 2.13.0 from PyPI) once when it is missing.

.PHONY: quickstart test build python bench clean-runs

## Run the main job on the embedded default: the three experiments, small, on generated data.
quickstart: build
	./target/debug/l2l-host run configs/quickstart.toml

## Build everything, then run the whole test suite (unit, ABI, CLI and out-of-tree plugin tests, then
## the Python package's pytest suite against the built host and plugins). Tests that need Chromium,
## Slurm, MLflow's client or root are #[ignore = "needs …"]: with L2L_TEST_IGNORED=1 (.ci/run sets it)
## they run too, and fail where what they need is missing.
test: build python
	scripts/cargo.sh test --workspace
	if [ -n "$$L2L_TEST_IGNORED" ]; then scripts/cargo.sh test --workspace --tests -- --ignored; fi
	scripts/python.sh test

## Build the host and every plugin.
build:
	scripts/cargo.sh build --workspace

## Build the `l2l` Python package and install it into the cached libtorch venv.
python: build
	scripts/python.sh install

## Measure the plugin-boundary overhead (release build).
bench:
	scripts/cargo.sh build --release --workspace
	scripts/cargo.sh bench -p l2l-system-tests --bench abi_overhead

clean-runs:
	rm -rf runs
