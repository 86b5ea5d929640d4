.PHONY: test bench run demo
test:
	./scripts/test.sh
bench:
	bench/run.sh
run:
	VENDORGATE_ADMIN_TOKEN=$${VENDORGATE_ADMIN_TOKEN:-dev-admin-token} cargo run --release -p vendorgate-server -- serve --upstream sim
demo:
	cargo run -p vendorgate-server -- demo
soak:
	cargo build -p vendorgate-server
	RACE_TRIALS=1000 cargo test --release -p vendorgate-server --test races -- --nocapture
	VENDORGATE_BIN=$(CURDIR)/target/debug/vendorgate .venv/bin/python tests/soak/crash.py --trials 25
