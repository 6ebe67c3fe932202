#!/bin/bash
# Builds rmq-javaclient, the Java RocketMQ test client (see Main.java and
# docs/rocketmq-image.md), into ${CACHE_DIR:-$HOME/.cache/rmq-nomad-driver}/javaclient/.
#
#   images/javaclient/build.sh                   build if needed; print the launcher path
#   images/javaclient/build.sh --print-classpath build if needed; print the class path
#
# The launcher runs `java [leading -D/-X args] -cp ... rmqnomad.javaclient.Main ARGS`:
#   "$(images/javaclient/build.sh)" -Drocketmq.namesrv.addr=127.0.0.1:9876 \
#       produce-consume --topic T --count 10
# or by hand:
#   java -Drocketmq.namesrv.addr=... -cp "$(images/javaclient/build.sh --print-classpath)" \
#       rmqnomad.javaclient.Main produce-consume --topic T --count 10
# Needs a JDK 17+ and Maven; reaches only Maven Central. Progress goes to stderr.
# The build itself is images/build-java-client.sh, shared by the Java clients.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/../build-java-client.sh" "$(dirname "${BASH_SOURCE[0]}")" "$@"
