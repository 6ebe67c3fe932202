#!/bin/bash
# End-to-end check of the rmq-nomad/rocketmq image and the Java test client,
# on this machine's Docker engine with host networking (loopback only):
#   1. a NameServer and a Broker (advertising 127.0.0.1:<free port>);
#   2. `mqadmin clusterList` lists the broker at that address;
#   3. rmq-javaclient sends and receives messages (-Drocketmq.namesrv.addr);
#   4. the same through an address server (python3 -m http.server serving
#      rocketmq/<subgroup>), and a second broker in address-server mode
#      registers itself.
# Builds the image and the client first if needed (both cached). Removes
# every container it started. Prints "N passed, N failed"; exit 0 if all pass.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
START=$SECONDS
log() { printf '[smoke %3ds] %s\n' $((SECONDS - START)) "$*" >&2; }

IMAGE=$("$HERE/build.sh")
CLIENT=$("$ROOT/images/javaclient/build.sh")
NAME=rmq-smoke-$$
CLUSTER=SmokeCluster
WORK=$(mktemp -d)
HTTP_PID=
PASS=0
FAIL=0

cleanup() {
  local c
  for c in "$NAME-ns" "$NAME-ba" "$NAME-bb"; do
    docker rm -f "$c" >/dev/null 2>&1 || true
  done
  if [[ -n "$HTTP_PID" ]]; then kill "$HTTP_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

check() {
  local what=$1
  shift
  if "$@"; then
    PASS=$((PASS + 1)); log "PASS $what"
  else
    FAIL=$((FAIL + 1)); log "FAIL $what"
  fi
}

# free_port N: a port P such that P-2 .. P+N-1 are free on 127.0.0.1 (a
# broker also binds P-2 and P+1).
free_port() {
  python3 - "$1" <<'EOF'
import socket, sys
span = int(sys.argv[1])
for _ in range(200):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
    if p < 1026 or p + span > 65535:
        continue
    ok = True
    for q in range(p - 2, p + span):
        t = socket.socket()
        try:
            t.bind(("0.0.0.0", q))
        except OSError:
            ok = False
        finally:
            t.close()
    if ok:
        print(p); break
EOF
}

NS_PORT=$(free_port 1)
BA_PORT=$(free_port 2)
BB_PORT=$(free_port 2)
HTTP_PORT=$(free_port 1)
log "image $IMAGE; namesrv :$NS_PORT, brokers :$BA_PORT and :$BB_PORT, address server :$HTTP_PORT"

docker run -d --name "$NAME-ns" --network host -e ROCKETMQ_LISTEN_PORT="$NS_PORT" "$IMAGE" namesrv >/dev/null
docker run -d --name "$NAME-ba" --network host \
  -e ROCKETMQ_ADVERTISED_IP=127.0.0.1 -e ROCKETMQ_ADVERTISED_PORT="$BA_PORT" \
  -e NAMESRV_ADDR="127.0.0.1:$NS_PORT" -e ROCKETMQ_CLUSTER="$CLUSTER" -e ROCKETMQ_BROKER_NAME=broker-a \
  "$IMAGE" broker >/dev/null

# The address server: GET /rocketmq/<subgroup> answers "ip:port".
mkdir -p "$WORK/www/rocketmq"
printf '127.0.0.1:%s' "$NS_PORT" >"$WORK/www/rocketmq/$CLUSTER"
python3 -m http.server --bind 127.0.0.1 --directory "$WORK/www" "$HTTP_PORT" >"$WORK/http.log" 2>&1 &
HTTP_PID=$!

docker run -d --name "$NAME-bb" --network host \
  -e ROCKETMQ_ADVERTISED_IP=127.0.0.1 -e ROCKETMQ_ADVERTISED_PORT="$BB_PORT" \
  -e ROCKETMQ_NAMESRV_DOMAIN="127.0.0.1:$HTTP_PORT" -e ROCKETMQ_NAMESRV_SUBGROUP="$CLUSTER" \
  -e ROCKETMQ_CLUSTER="$CLUSTER" -e ROCKETMQ_BROKER_NAME=broker-b \
  "$IMAGE" broker >/dev/null

advertises() {
  docker logs "$NAME-ba" 2>&1 | grep -q "^rocketmq broker advertising 127.0.0.1:$BA_PORT "
}
# listed ADDR TIMEOUT: clusterList shows a broker at ADDR within TIMEOUT s.
listed() {
  local addr=$1 deadline=$((SECONDS + $2))
  while ((SECONDS < deadline)); do
    if docker exec "$NAME-ns" mqadmin clusterList -n "127.0.0.1:$NS_PORT" 2>/dev/null |
      awk -v c="$CLUSTER" -v a="$addr" '$1 == c && $4 == a { f = 1 } END { exit !f }'; then
      return 0
    fi
    sleep 2
  done
  docker exec "$NAME-ns" mqadmin clusterList -n "127.0.0.1:$NS_PORT" >&2 || true
  return 1
}
client_direct() {
  "$CLIENT" "-Drocketmq.namesrv.addr=127.0.0.1:$NS_PORT" produce-consume --topic SmokeDirect --count 50 --timeout 60
}
client_address_server() {
  "$CLIENT" "-Drocketmq.namesrv.domain=127.0.0.1:$HTTP_PORT" "-Drocketmq.namesrv.domain.subgroup=$CLUSTER" \
    produce-consume --topic SmokeDomain --count 50 --timeout 60
}

sleep 3
check "broker prints its advertised address" advertises
check "clusterList shows broker-a at 127.0.0.1:$BA_PORT" listed "127.0.0.1:$BA_PORT" 60
check "java client, fixed name server list" client_direct
check "java client, address server" client_address_server
# Address-server mode: first lookup 10 s after start, registration on the next 10 s tick.
check "clusterList shows broker-b (address-server mode) at 127.0.0.1:$BB_PORT" listed "127.0.0.1:$BB_PORT" 60

if ((FAIL > 0)); then
  for c in "$NAME-ns" "$NAME-ba" "$NAME-bb"; do
    log "last log lines of $c:"
    docker logs --tail 20 "$c" 2>&1 | sed 's/^/  /' >&2 || true
  done
fi
echo "smoke: $PASS passed, $FAIL failed"
((FAIL == 0))
