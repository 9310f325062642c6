# Shared by run.sh and instructions.sh (sourced): the gateway's config in the benchmark, every
# feature on: SQLite ledger, sanitizer scanning credentials and redacting PII, a virtual key.

write_gateway_config() { # FILE UPSTREAM_URL DB_FILE [WORKERS, default 1]
  cat > "$1" <<EOF
[server]
workers = ${4:-1}

[[providers]]
id = "openai"
provider_type = "openai"
api_key = "sk-bench-provider-key"
endpoint = "$2"

[[providers]]
id = "anthropic"
provider_type = "anthropic"
api_key = "sk-ant-bench"
endpoint = "$2"

[database]
url = "sqlite://$3?mode=rwc"
spool_dir = "${3%.db}-spool"

[sanitization]
enabled = true
scan_credentials = true
redact_pii = true

[key_map.bench-team-key]
label = "Bench Team"
openai_key = "sk-bench-team"
anthropic_key = "sk-ant-bench-team"
EOF
}
