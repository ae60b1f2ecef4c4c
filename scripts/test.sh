#!/usr/bin/env bash
# The test command (README: "Run the tests"). Makes sure the services the
# integration tests talk to run on 127.0.0.1 — PostgreSQL on 5432 (user
# postgres, trusted from loopback, TLS on) and Redis on 6379 — and that
# OpenSSH's ssh-keygen/ssh-agent exist, installing them from Debian's packages
# when they are missing, then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "test.sh: need root to run: $*" >&2; return 1; fi
}

apt_updated=no
apt_install() {
  if [ "$apt_updated" = no ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=yes
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

postgres_answers() {
  command -v psql >/dev/null &&
    PGCONNECT_TIMEOUT=3 psql "host=127.0.0.1 port=5432 user=postgres dbname=postgres sslmode=disable" \
      -Atqc 'select 1' >/dev/null 2>&1
}

ensure_postgres() {
  if postgres_answers; then return; fi
  if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    echo "test.sh: installing PostgreSQL"
    apt_install postgresql ssl-cert
  fi
  local version conf_dir
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  conf_dir=/etc/postgresql/$version/main
  # Tests connect from loopback as `postgres` without a password, and check
  # sslmode=require against the server's (self-signed) certificate.
  if ! as_root grep -q '^# runproof-tests' "$conf_dir/pg_hba.conf"; then
    as_root sh -c "printf '%s\n' '# runproof-tests: trust loopback' \
      'host all all 127.0.0.1/32 trust' 'host all all ::1/128 trust' \
      | cat - '$conf_dir/pg_hba.conf' > '$conf_dir/pg_hba.conf.new' \
      && mv '$conf_dir/pg_hba.conf.new' '$conf_dir/pg_hba.conf' \
      && chown postgres:postgres '$conf_dir/pg_hba.conf'"
  fi
  as_root sed -i "s/^#\?ssl = .*/ssl = on/; s/^#\?listen_addresses = .*/listen_addresses = 'localhost'/" "$conf_dir/postgresql.conf"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main restart ||
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 30); do postgres_answers && return; sleep 1; done
  echo "test.sh: PostgreSQL did not come up on 127.0.0.1:5432" >&2
  return 1
}

redis_answers() {
  command -v redis-cli >/dev/null && [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]
}

ensure_redis() {
  if redis_answers; then return; fi
  if ! command -v redis-server >/dev/null; then
    echo "test.sh: installing Redis"
    apt_install redis-server
  fi
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/runproof-tests.log
  for _ in $(seq 1 30); do redis_answers && return; sleep 1; done
  echo "test.sh: Redis did not come up on 127.0.0.1:6379" >&2
  return 1
}

# Signing tests check seals with the real `ssh-keygen -Y verify` and sign
# through a real `ssh-agent`.
ensure_openssh() {
  if command -v ssh-keygen >/dev/null && command -v ssh-agent >/dev/null && command -v ssh-add >/dev/null; then
    return
  fi
  echo "test.sh: installing openssh-client"
  apt_install openssh-client
}

ensure_postgres
ensure_redis
ensure_openssh
exec cargo test --locked "$@"
