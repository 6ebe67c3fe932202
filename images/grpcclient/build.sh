#!/bin/bash
# Builds rmq-grpcclient, the RocketMQ 5.x gRPC test and benchmark client (see
# Main.java and docs/proxy.md), into ${CACHE_DIR:-$HOME/.cache/rmq-nomad-driver}/grpcclient/.
# It speaks gRPC to a proxy with rocketmq-client-java and, for comparisons,
# the remoting protocol with rocketmq-client.
#
#   images/grpcclient/build.sh                   build if needed; print the launcher path
#   images/grpcclient/build.sh --print-classpath build if needed; print the class path
#
# The launcher runs `java [leading -D/-X args] -cp ... rmqnomad.grpcclient.Main ARGS`:
#   "$(images/grpcclient/build.sh)" produce-consume --endpoints 127.0.0.1:8081 --topic T --count 10
# Needs a JDK 17+ and Maven; reaches only Maven Central. Progress goes to stderr.
# The build itself is images/build-java-client.sh, shared by the Java clients.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/../build-java-client.sh" "$(dirname "${BASH_SOURCE[0]}")" "$@"
