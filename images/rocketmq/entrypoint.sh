#!/bin/bash
# Entrypoint of the rmq-nomad/rocketmq image.
#
#   entrypoint.sh namesrv [extra NamesrvStartup args]
#   entrypoint.sh broker  [extra BrokerStartup args]
#   entrypoint.sh mqcontroller [extra ControllerStartup args]   (also: controller)
#   entrypoint.sh proxy   [extra ProxyStartup args]   (gRPC proxy for 5.x clients)
#   entrypoint.sh mqadmin <mqadmin sub-command and args>
#   entrypoint.sh java|bash|sh ...   (runs that command, for debugging)
#   entrypoint.sh                    (no args: the mode in $ROCKETMQ_ROLE)
#
# The environment contract with the rocketmq Nomad driver is described in
# docs/rocketmq-image.md; keep the two in step.
set -euo pipefail

ROCKETMQ_HOME=${ROCKETMQ_HOME:-/opt/rocketmq}
export ROCKETMQ_HOME
CONF_DIR=$ROCKETMQ_HOME/conf
if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
  JAVA=$JAVA_HOME/bin/java
else
  JAVA=java
fi
CLASSPATH="$CONF_DIR:$ROCKETMQ_HOME/lib/*"

log() { echo "rocketmq-entrypoint: $*" >&2; }
die() { log "error: $*"; exit 2; }

usage() {
  cat >&2 <<'EOF'
usage: entrypoint.sh namesrv|broker|mqcontroller|proxy|mqadmin [args...]
  namesrv   run a NameServer on $ROCKETMQ_LISTEN_PORT (default 9876)
  broker    run a Broker advertising $ROCKETMQ_ADVERTISED_IP:$ROCKETMQ_ADVERTISED_PORT
  mqcontroller  run a DLedger controller (controller mode), peers from
            $NOMAD_TASK_DIR/rocketmq/controller.conf or $ROCKETMQ_CONTROLLER_CONF
  proxy     run a gRPC proxy (cluster mode) on $ROCKETMQ_LISTEN_PORT (default 8081),
            NameServers from the address server $ROCKETMQ_NAMESRV_DOMAIN
  mqadmin   run org.apache.rocketmq.tools.command.MQAdminStartup with the args
See docs/rocketmq-image.md for all environment variables.
EOF
}

# --- small helpers -----------------------------------------------------------

# is_port VALUE: a TCP port number 1..65535
is_port() { [[ "$1" =~ ^[0-9]+$ ]] && (( 10#$1 >= 1 && 10#$1 <= 65535 )); }

# merge_props FILE...: merge Java properties files (key=value, key:value or
# "key value" lines; # and ! comments). The last file that sets a key wins;
# keys keep the order in which they first appear. Continuation lines (a
# trailing backslash) are not supported.
merge_props() {
  awk '
    /^[ \t]*([#!].*)?$/ { next }
    {
      line = $0
      sub(/^[ \t]+/, "", line)
      sub(/\r$/, "", line)
      if (match(line, /[ \t]*[=:][ \t]*|[ \t]+/)) {
        key = substr(line, 1, RSTART - 1)
        val = substr(line, RSTART + RLENGTH)
      } else {
        key = line; val = ""
      }
      if (!(key in seen)) { seen[key] = 1; order[++n] = key }
      value[key] = val
    }
    END { for (i = 1; i <= n; i++) print order[i] "=" value[order[i]] }
  ' "$@"
}

# prop_get FILE KEY: value of KEY in a merged (key=value) file, empty if unset.
prop_get() {
  awk -v k="$2" 'index($0, k "=") == 1 { v = substr($0, length(k) + 2) } END { print v }' "$1"
}

# prop_del FILE KEY: remove KEY from a merged (key=value) file.
prop_del() {
  local tmp
  tmp=$(mktemp)
  awk -v k="$2" 'index($0, k "=") != 1' "$1" >"$tmp"
  cat "$tmp" >"$1"
  rm -f "$tmp"
}

# data_root MODE: where this task keeps its state.
data_root() {
  if [[ -n "${ROCKETMQ_DATA_DIR:-}" ]]; then
    echo "$ROCKETMQ_DATA_DIR"
  elif [[ -n "${NOMAD_ALLOC_DIR:-}" ]]; then
    echo "$NOMAD_ALLOC_DIR/data/rocketmq-$1"
  else
    echo "/tmp/rocketmq-$1"
  fi
}

# JVM options shared by every mode. Heap and direct memory are per mode and
# can be replaced as a whole with ROCKETMQ_JAVA_HEAP_OPTS; JAVA_OPT_EXT (the
# variable RocketMQ's own scripts read) is appended last.
common_jvm_opts() {
  JVM_OPTS=(
    -server
    -XX:+UseSerialGC
    -XX:-OmitStackTraceInFastThrow
    -XX:-UseLargePages
    -XX:+ExitOnOutOfMemoryError
    -Djava.awt.headless=true
    -Dfile.encoding=UTF-8
  )
}

append_user_jvm_opts() {
  local heap_default=$1
  local -a extra=()
  # Word splitting is intended: these variables hold option lists.
  read -r -a extra <<<"${ROCKETMQ_JAVA_HEAP_OPTS:-$heap_default}"
  JVM_OPTS+=("${extra[@]}")
  if [[ -n "${JAVA_OPT_EXT:-}" ]]; then
    read -r -a extra <<<"$JAVA_OPT_EXT"
    JVM_OPTS+=("${extra[@]}")
  fi
}

# Name server lookup through an address server (RocketMQ's "name server
# address server"): the JVM asks http://DOMAIN/rocketmq/SUBGROUP.
NS_MODE=none
NS_OPTS=()
namesrv_lookup_opts() {
  if [[ -n "${NAMESRV_ADDR:-}" ]]; then
    NS_MODE=direct
    if [[ -n "${ROCKETMQ_NAMESRV_DOMAIN:-}" ]]; then
      log "warning: both NAMESRV_ADDR and ROCKETMQ_NAMESRV_DOMAIN are set; NAMESRV_ADDR wins, no address-server lookup"
    fi
  elif [[ -n "${ROCKETMQ_NAMESRV_DOMAIN:-}" ]]; then
    NS_MODE=domain
    NS_OPTS+=("-Drocketmq.namesrv.domain=$ROCKETMQ_NAMESRV_DOMAIN")
    if [[ -n "${ROCKETMQ_NAMESRV_SUBGROUP:-}" ]]; then
      NS_OPTS+=("-Drocketmq.namesrv.domain.subgroup=$ROCKETMQ_NAMESRV_SUBGROUP")
    fi
  fi
}

ns_lookup_url() {
  local domain=$ROCKETMQ_NAMESRV_DOMAIN
  [[ "$domain" == *:* ]] || domain="$domain:8080"
  echo "http://$domain/rocketmq/${ROCKETMQ_NAMESRV_SUBGROUP:-nsaddr}"
}

# --- modes -------------------------------------------------------------------

run_namesrv() {
  local port=${ROCKETMQ_LISTEN_PORT:-9876}
  is_port "$port" || die "ROCKETMQ_LISTEN_PORT=$port is not a TCP port"
  local root
  root=$(data_root namesrv)
  mkdir -p "$root"
  local conf=$root/namesrv.conf
  {
    echo "# generated by $0 at $(date -u +%FT%TZ)"
    echo "listenPort=$port"
    echo "kvConfigPath=$root/kvConfig.json"
  } >"$conf.gen"
  if [[ -n "${ROCKETMQ_NAMESRV_CONF:-}" ]]; then
    [[ -r "$ROCKETMQ_NAMESRV_CONF" ]] || die "ROCKETMQ_NAMESRV_CONF=$ROCKETMQ_NAMESRV_CONF is not readable"
    # User values first, then ours: the listen port is the driver's.
    merge_props "$ROCKETMQ_NAMESRV_CONF" "$conf.gen" >"$conf"
  else
    merge_props "$conf.gen" >"$conf"
  fi
  rm -f "$conf.gen"

  common_jvm_opts
  append_user_jvm_opts "-Xms64m -Xmx128m -XX:MaxDirectMemorySize=64m -XX:MaxMetaspaceSize=128m"
  JVM_OPTS+=("-Drmq.logback.configurationFile=$CONF_DIR/rmq.console.logback.xml" "-Duser.home=$root")

  echo "rocketmq namesrv listening on 0.0.0.0:$port (config $conf, data $root)"
  exec "$JAVA" "${JVM_OPTS[@]}" -cp "$CLASSPATH" \
    org.apache.rocketmq.namesrv.NamesrvStartup -c "$conf" "$@"
}

run_broker() {
  local root gen conf driver_conf
  root=$(data_root "broker-${ROCKETMQ_BROKER_NAME:-broker-a}-${ROCKETMQ_BROKER_ID:-0}")
  mkdir -p "$root"
  conf=$root/broker.conf
  gen=$(mktemp -d)

  # Layer 1: image defaults + computed store paths.
  {
    cat "$CONF_DIR/broker-defaults.properties"
    echo "storePathRootDir=$root/store"
    echo "storePathCommitLog=$root/store/commitlog"
  } >"$gen/1-defaults"

  # Layer 2: the user's broker config file (optional).
  : >"$gen/2-user"
  if [[ -n "${ROCKETMQ_BROKER_CONF:-}" ]]; then
    [[ -r "$ROCKETMQ_BROKER_CONF" ]] || die "ROCKETMQ_BROKER_CONF=$ROCKETMQ_BROKER_CONF is not readable"
    cat "$ROCKETMQ_BROKER_CONF" >"$gen/2-user"
    echo >>"$gen/2-user"
  fi

  # Layer 3: variables set on the task.
  namesrv_lookup_opts
  {
    [[ -n "${ROCKETMQ_CLUSTER:-}" ]] && echo "brokerClusterName=$ROCKETMQ_CLUSTER"
    [[ -n "${ROCKETMQ_BROKER_NAME:-}" ]] && echo "brokerName=$ROCKETMQ_BROKER_NAME"
    [[ -n "${ROCKETMQ_BROKER_ID:-}" ]] && echo "brokerId=$ROCKETMQ_BROKER_ID"
    case $NS_MODE in
      direct) echo "namesrvAddr=$NAMESRV_ADDR"; echo "fetchNamesrvAddrByAddressServer=false" ;;
      domain) echo "fetchNamesrvAddrByAddressServer=true" ;;
    esac
    true
  } >"$gen/3-env"

  # Layer 4: the advertised address chosen by the driver.
  {
    if [[ -n "${ROCKETMQ_ADVERTISED_IP:-}" ]]; then
      echo "brokerIP1=$ROCKETMQ_ADVERTISED_IP"
    fi
    if [[ -n "${ROCKETMQ_ADVERTISED_PORT:-}" ]]; then
      is_port "$ROCKETMQ_ADVERTISED_PORT" || die "ROCKETMQ_ADVERTISED_PORT=$ROCKETMQ_ADVERTISED_PORT is not a TCP port"
      if [[ -n "${ROCKETMQ_LISTEN_PORT:-}" && "$ROCKETMQ_LISTEN_PORT" != "$ROCKETMQ_ADVERTISED_PORT" ]]; then
        log "warning: ROCKETMQ_LISTEN_PORT=$ROCKETMQ_LISTEN_PORT differs from ROCKETMQ_ADVERTISED_PORT=$ROCKETMQ_ADVERTISED_PORT;" \
          "a broker listens on the port it advertises, using $ROCKETMQ_ADVERTISED_PORT"
      fi
      echo "listenPort=$ROCKETMQ_ADVERTISED_PORT"
    elif [[ -n "${ROCKETMQ_LISTEN_PORT:-}" ]]; then
      is_port "$ROCKETMQ_LISTEN_PORT" || die "ROCKETMQ_LISTEN_PORT=$ROCKETMQ_LISTEN_PORT is not a TCP port"
      echo "listenPort=$ROCKETMQ_LISTEN_PORT"
    fi
    true
  } >"$gen/4-advertised"

  # Layer 5: the driver's fragment, highest precedence.
  : >"$gen/5-driver"
  driver_conf=${NOMAD_TASK_DIR:+$NOMAD_TASK_DIR/rocketmq/broker.conf}
  if [[ -n "$driver_conf" && -f "$driver_conf" ]]; then
    cat "$driver_conf" >"$gen/5-driver"
    echo >>"$gen/5-driver"
  else
    driver_conf=
  fi

  {
    echo "# generated by $0 at $(date -u +%FT%TZ); do not edit, it is rewritten at every start"
    merge_props "$gen/1-defaults" "$gen/2-user" "$gen/3-env" "$gen/4-advertised" "$gen/5-driver"
  } >"$conf"
  local driver_ns
  driver_ns=$(prop_get "$gen/5-driver" namesrvAddr)
  rm -rf "$gen"

  # In address-server mode no fixed list may remain (RocketMQ would use it and
  # never ask the address server), neither from a file nor from the env;
  # except the driver's: the current list from Consul, which the driver keeps
  # current while the broker runs (the driver's broker keeper, docs/topics.md).
  if [[ $NS_MODE == domain && -z "$driver_ns" ]]; then
    prop_del "$conf" namesrvAddr
    unset NAMESRV_ADDR
  fi

  local ip port ha_port nsaddr
  ip=$(prop_get "$conf" brokerIP1)
  port=$(prop_get "$conf" listenPort)
  is_port "$port" || die "listenPort=$port in the merged config is not a TCP port"
  (( 10#$port > 2 )) || die "listenPort must be > 2 (RocketMQ also binds listenPort-2)"
  # The HA address (slaves connect to brokerIP2:haListenPort): default it to
  # the advertised IP, which RocketMQ would otherwise guess from the container.
  if [[ -n "$ip" && -z "$(prop_get "$conf" brokerIP2)" ]]; then
    echo "brokerIP2=$ip" >>"$conf"
  fi
  ha_port=$(prop_get "$conf" haListenPort)
  [[ -n "$ha_port" && "$ha_port" != 0 ]] || ha_port=$((10#$port + 1))
  nsaddr=$(prop_get "$conf" namesrvAddr)
  if [[ -n "$driver_ns" ]]; then
    NS_DESC="namesrv $nsaddr (from Consul, kept current by the driver)"
  elif [[ -n "$nsaddr" ]]; then
    NS_DESC="namesrv $nsaddr"
  elif [[ $NS_MODE == domain ]]; then
    NS_DESC="namesrv from address server $(ns_lookup_url) (first lookup ~10 s after start)"
  elif [[ "$(prop_get "$conf" fetchNamesrvAddrByAddressServer)" == true ]]; then
    NS_DESC="namesrv from the default address server"
  else
    NS_DESC="no namesrv configured"
    log "warning: no NAMESRV_ADDR, ROCKETMQ_NAMESRV_DOMAIN or namesrvAddr; the broker will not register anywhere"
  fi

  mkdir -p "$root/store"
  broker_store_prepare "$(prop_get "$conf" storePathRootDir)" "$(prop_get "$conf" storePathCommitLog)" "$conf"
  common_jvm_opts
  # Direct memory 256m: 5.x clients consume with POP, which runs the timer
  # store (4 MB of direct buffer per timer thread, TimerMessageStore.java:198);
  # at 128m a broker behind a proxy fails those allocations and stalls POP.
  append_user_jvm_opts "-Xms128m -Xmx256m -XX:MaxDirectMemorySize=256m -XX:MaxMetaspaceSize=192m"
  JVM_OPTS+=("${NS_OPTS[@]}" "-Drmq.logback.configurationFile=$CONF_DIR/rmq.console.logback.xml" "-Duser.home=$root")

  echo "rocketmq broker advertising ${ip:-<auto-detected>}:$port" \
    "(cluster $(prop_get "$conf" brokerClusterName), name $(prop_get "$conf" brokerName)," \
    "id $(prop_get "$conf" brokerId); also binds $((10#$port - 2)) (fast) and $ha_port (HA);" \
    "$NS_DESC; config $conf${driver_conf:+ incl. $driver_conf})"
  exec "$JAVA" "${JVM_OPTS[@]}" -cp "$CLASSPATH" \
    org.apache.rocketmq.broker.BrokerStartup -c "$conf" "$@"
}

run_controller() {
  local root gen conf driver_conf
  root=$(data_root controller)
  mkdir -p "$root/store"
  conf=$root/controller.conf
  gen=$(mktemp -d)

  # Layer 1: defaults. DLedger (jRaft never scans for inactive brokers in
  # 5.3.3); the DLedger store is the controllers' replicated state and must
  # outlive the task: it lives in the data dir.
  {
    echo "controllerType=DLedger"
    echo "controllerStorePath=$root/store"
    echo "configStorePath=$root/controller.properties"
    echo "listenPort=${ROCKETMQ_LISTEN_PORT:-9878}"
    echo "enableElectUncleanMaster=false"
    echo "notifyBrokerRoleChanged=true"
  } >"$gen/1-defaults"
  # Layer 2: the user's file (optional).
  : >"$gen/2-user"
  if [[ -n "${ROCKETMQ_CONTROLLER_CONF:-}" ]]; then
    [[ -r "$ROCKETMQ_CONTROLLER_CONF" ]] || die "ROCKETMQ_CONTROLLER_CONF=$ROCKETMQ_CONTROLLER_CONF is not readable"
    cat "$ROCKETMQ_CONTROLLER_CONF" >"$gen/2-user"
    echo >>"$gen/2-user"
  fi
  # Layer 3: the driver's fragment (group, peers, self id), highest precedence.
  : >"$gen/3-driver"
  driver_conf=${NOMAD_TASK_DIR:+$NOMAD_TASK_DIR/rocketmq/controller.conf}
  if [[ -n "$driver_conf" && -f "$driver_conf" ]]; then
    cat "$driver_conf" >"$gen/3-driver"
    echo >>"$gen/3-driver"
  else
    driver_conf=
  fi
  {
    echo "# generated by $0 at $(date -u +%FT%TZ); do not edit, it is rewritten at every start"
    merge_props "$gen/1-defaults" "$gen/2-user" "$gen/3-driver"
  } >"$conf"
  rm -rf "$gen"

  local peers self group port
  peers=$(prop_get "$conf" controllerDLegerPeers)
  self=$(prop_get "$conf" controllerDLegerSelfId)
  group=$(prop_get "$conf" controllerDLegerGroup)
  [[ -n "$peers" && -n "$self" && -n "$group" ]] ||
    die "a controller needs controllerDLegerGroup, controllerDLegerPeers and controllerDLegerSelfId (from the driver's rocketmq { role = \"controller\" peers = [...] } or ROCKETMQ_CONTROLLER_CONF)"
  # DLedger listens on the port of its own peers entry, not on listenPort.
  port=$(tr ';' '\n' <<<"$peers" | awk -v s="$self-" 'index($0, s) == 1 { sub(/.*:/, ""); print }')
  [[ -n "$port" ]] || die "controllerDLegerSelfId=$self is not in controllerDLegerPeers=$peers"

  common_jvm_opts
  append_user_jvm_opts "-Xms64m -Xmx128m -XX:MaxDirectMemorySize=64m -XX:MaxMetaspaceSize=128m"
  JVM_OPTS+=("-Drmq.logback.configurationFile=$CONF_DIR/rmq.console.logback.xml" "-Duser.home=$root")

  echo "rocketmq controller $self of group $group listening on 0.0.0.0:$port (peers $peers; store $root/store; config $conf${driver_conf:+ incl. $driver_conf})"
  exec "$JAVA" "${JVM_OPTS[@]}" -cp "$CLASSPATH" \
    org.apache.rocketmq.controller.ControllerStartup -c "$conf" "$@"
}

# props_to_json FILE: a merged key=value file as the flat JSON object the
# proxy reads (rmq-proxy.json). Integers and true/false stay bare, anything
# else becomes a JSON string.
props_to_json() {
  awk '
    BEGIN { printf "{" }
    {
      i = index($0, "="); key = substr($0, 1, i - 1); val = substr($0, i + 1)
      if (val !~ /^-?[0-9]+$/ && val != "true" && val != "false") {
        gsub(/\\/, "\\\\", val); gsub(/"/, "\\\"", val); gsub(/\t/, "\\t", val)
        val = "\"" val "\""
      }
      printf "%s\n  \"%s\": %s", (n++ ? "," : ""), key, val
    }
    END { print "\n}" }
  ' "$1"
}

run_proxy() {
  local root gen conf json driver_conf port domain
  root=$(data_root proxy)
  mkdir -p "$root"
  conf=$root/proxy.conf
  json=$root/rmq-proxy.json
  gen=$(mktemp -d)

  # Layer 1: defaults and the variables set on the task. Cluster mode: the
  # proxy is stateless and talks to brokers found through the NameServers.
  port=${ROCKETMQ_LISTEN_PORT:-8081}
  is_port "$port" || die "ROCKETMQ_LISTEN_PORT=$port is not a TCP port"
  namesrv_lookup_opts
  {
    echo "proxyMode=cluster"
    echo "grpcServerPort=$port"
    # Routes carry the address the client dialled with this port, not the
    # container's own gRPC port: behind a load balancer or a mapped port.
    echo "useEndpointPortFromRequest=true"
    [[ -n "${ROCKETMQ_CLUSTER:-}" ]] && echo "rocketMQClusterName=$ROCKETMQ_CLUSTER"
    case $NS_MODE in
      direct) echo "namesrvAddr=$NAMESRV_ADDR" ;;
      domain)
        echo "namesrvDomain=$ROCKETMQ_NAMESRV_DOMAIN"
        echo "namesrvDomainSubgroup=${ROCKETMQ_NAMESRV_SUBGROUP:-${ROCKETMQ_CLUSTER:-nsaddr}}"
        ;;
    esac
    true
  } >"$gen/1-defaults"
  # Layer 2: the user's proxy config, key=value (optional).
  : >"$gen/2-user"
  if [[ -n "${ROCKETMQ_PROXY_CONF:-}" ]]; then
    [[ -r "$ROCKETMQ_PROXY_CONF" ]] || die "ROCKETMQ_PROXY_CONF=$ROCKETMQ_PROXY_CONF is not readable"
    cat "$ROCKETMQ_PROXY_CONF" >"$gen/2-user"
    echo >>"$gen/2-user"
  fi
  # Layer 3: the driver's fragment, highest precedence.
  : >"$gen/3-driver"
  driver_conf=${NOMAD_TASK_DIR:+$NOMAD_TASK_DIR/rocketmq/proxy.conf}
  if [[ -n "$driver_conf" && -f "$driver_conf" ]]; then
    cat "$driver_conf" >"$gen/3-driver"
    echo >>"$gen/3-driver"
  else
    driver_conf=
  fi
  merge_props "$gen/1-defaults" "$gen/2-user" "$gen/3-driver" >"$conf"
  rm -rf "$gen"

  # With an address server no fixed list may remain: the proxy reads
  # NAMESRV_ADDR itself and would then never ask the address server.
  domain=$(prop_get "$conf" namesrvDomain)
  if [[ -n "$domain" ]]; then
    prop_del "$conf" namesrvAddr
    unset NAMESRV_ADDR
  elif [[ -z "$(prop_get "$conf" namesrvAddr)" ]]; then
    die "a proxy needs its NameServers: set ROCKETMQ_NAMESRV_DOMAIN (the address server, host:port) or namesrvDomain in ROCKETMQ_PROXY_CONF"
  fi
  port=$(prop_get "$conf" grpcServerPort)
  is_port "$port" || die "grpcServerPort=$port in the merged config is not a TCP port"
  props_to_json "$conf" >"$json"

  common_jvm_opts
  append_user_jvm_opts "-Xms64m -Xmx192m -XX:MaxDirectMemorySize=128m -XX:MaxMetaspaceSize=160m"
  JVM_OPTS+=("-Drmq.logback.configurationFile=$CONF_DIR/rmq.console.logback.xml" "-Duser.home=$root")

  local ns_desc
  if [[ -n "$domain" ]]; then
    ns_desc="namesrv from address server $domain/rocketmq/$(prop_get "$conf" namesrvDomainSubgroup)"
  else
    ns_desc="namesrv $(prop_get "$conf" namesrvAddr)"
  fi
  echo "rocketmq proxy (cluster $(prop_get "$conf" rocketMQClusterName)) serving gRPC on 0.0.0.0:$port;" \
    "$ns_desc; config $json${driver_conf:+ incl. $driver_conf}"
  exec "$JAVA" "${JVM_OPTS[@]}" -cp "$CLASSPATH" \
    org.apache.rocketmq.proxy.ProxyStartup -pc "$json" "$@"
}

# --- the broker's store before the JVM opens it --------------------------------

# broker_store_prepare STORE_ROOT COMMITLOG_DIR CONF: seeds an empty store
# with the driver's desired topics and groups, starts it read-only when the
# driver asks for it, and gives back the holes a migration filled in.
broker_store_prepare() {
  local store=${1:-} commitlog=${2:-} conf=${3:-} empty=false
  [[ -n "$store" ]] || return 0
  [[ -n "$commitlog" ]] || commitlog=$store/commitlog
  mkdir -p "$store/config"
  [[ -e "$store/config/topics.json" || -e "$store/config/topics.json.bak" ]] || empty=true
  seed_config "$store/config" topics.json
  seed_config "$store/config" subscriptionGroup.json
  read_only_grace "$empty" "$conf"
  if [[ ${ROCKETMQ_RESTORE_HOLES:-true} == true ]]; then
    restore_holes "$store" "$commitlog"
  fi
}

# read_only_grace EMPTY CONF: a store without topics.json is new or lost.
# When the driver wrote $NOMAD_TASK_DIR/rocketmq/read-only-grace (SECONDS:
# this broker name ran in the cluster before), the broker starts with
# brokerPermission=4 (read only) and the driver makes it writable after
# SECONDS (rocketmq/read-only-until). Consumers that still pull this broker
# name with offsets of the lost store get "no message in queue" and start
# over at 0 (RocketMQ 5.3.3 PullMessageProcessor, NO_MESSAGE_IN_QUEUE);
# had a producer written first, they would be moved to the queue's end and
# skip what was written (DefaultMessageStore.getMessage,
# OFFSET_OVERFLOW_BADLY).
read_only_grace() {
  local empty=$1 conf=$2 grace_file until_file secs
  grace_file=${NOMAD_TASK_DIR:+$NOMAD_TASK_DIR/rocketmq/read-only-grace}
  until_file=${NOMAD_TASK_DIR:+$NOMAD_TASK_DIR/rocketmq/read-only-until}
  [[ -n "$until_file" ]] || return 0
  rm -f "$until_file" 2>/dev/null || true
  [[ $empty == true && -f "$grace_file" && -n "$conf" ]] || return 0
  secs=$(tr -dc 0-9 <"$grace_file")
  [[ -n "$secs" ]] && ((10#$secs > 0)) || return 0
  # Only when the driver can see when to end it: never read only for good.
  if ! echo $(($(date +%s) + 10#$secs)) 2>/dev/null >"$until_file"; then
    log "warning: cannot write $until_file; the empty store takes writes at once"
    return 0
  fi
  echo "brokerPermission=4" >>"$conf"
  log "empty store under a broker name that ran before: read only for the first $((10#$secs)) s, so consumers reset their offsets of the lost store before anything is written"
}

# seed_config DIR FILE: copies the driver's $NOMAD_TASK_DIR/rocketmq/FILE
# into the store's config dir when the store has neither FILE nor its .bak
# (a new or lost store). A store that has them keeps them: the driver adds
# what is missing once the broker runs. RocketMQ 5.3.3 loads these files
# at start (TopicConfigManager / SubscriptionGroupManager, via
# ConfigManager.load) on top of its built-in system topics and groups, so
# the seeded ones are in the broker's first registration.
seed_config() {
  local dir=$1 file=$2 seed
  seed=${NOMAD_TASK_DIR:+$NOMAD_TASK_DIR/rocketmq/$file}
  [[ -n "$seed" && -f "$seed" ]] || return 0
  if [[ -e "$dir/$file" || -e "$dir/$file.bak" ]]; then
    return 0
  fi
  cp "$seed" "$dir/$file.tmp" && mv "$dir/$file.tmp" "$dir/$file"
  log "store has no $file: seeded it with the driver's $(grep -c '"topicName"\|"groupName"' "$dir/$file") entries"
}

# dense FILE: the file has at least 90% of its size allocated on disk.
dense() {
  local blocks bsize size
  read -r blocks bsize size < <(stat -c '%b %B %s' "$1") || return 1
  ((size > 0 && blocks * bsize >= size / 10 * 9))
}

# restore_holes STORE COMMITLOG: RocketMQ creates its mapped files (commit
# log, consume queues, index, timer wheel and log) at full size but sparse;
# their unwritten tails take no disk space. Nomad's ephemeral_disk migration
# copies them as plain files, so on the new host every zero is written out
# (a 1 GiB commit log file takes 1 GiB). Only the newest files of each kind
# have unwritten tails; where such a file is fully allocated, this punches
# holes into its zero blocks again (fallocate --dig-holes; the content is
# unchanged). Anything else, and an unsupported file system, is left as is.
restore_holes() {
  local store=$1 commitlog=$2 d f before=0 after=0 n=0 t0=${EPOCHREALTIME/./}
  local -a files=() tail=()
  shopt -s nullglob
  newest() { # newest N FILE...: the last N names (RocketMQ names sort by offset)
    local k=$1; shift
    (($# > k)) && shift $(($# - k))
    printf '%s\n' "$@"
  }
  mapfile -t tail < <(newest 2 "$commitlog"/[0-9]*); files+=("${tail[@]}")
  for d in "$store"/consumequeue/*/*/; do
    mapfile -t tail < <(newest 1 "$d"[0-9]*); files+=("${tail[@]}")
  done
  mapfile -t tail < <(newest 1 "$store"/index/[0-9]*); files+=("${tail[@]}")
  mapfile -t tail < <(newest 2 "$store"/timerlog/[0-9]*); files+=("${tail[@]}")
  [[ -f "$store/timerwheel" ]] && files+=("$store/timerwheel")
  shopt -u nullglob
  for f in "${files[@]}"; do
    [[ -f "$f" ]] && dense "$f" || continue
    before=$((before + $(du -k "$f" | cut -f1)))
    fallocate --dig-holes "$f" 2>/dev/null || { log "warning: cannot dig holes in $f (file system?)"; continue; }
    after=$((after + $(du -k "$f" | cut -f1)))
    n=$((n + 1))
  done
  if ((n > 0)); then
    log "store: restored the holes of $n fully allocated store files (a migrated store):" \
      "$((before / 1024)) MiB -> $((after / 1024)) MiB on disk in $(((${EPOCHREALTIME/./} - t0) / 1000)) ms"
  fi
}

run_mqadmin() {
  common_jvm_opts
  append_user_jvm_opts "-Xms32m -Xmx128m -XX:TieredStopAtLevel=1"
  namesrv_lookup_opts
  local home
  home=$(mktemp -d)
  JVM_OPTS+=("${NS_OPTS[@]}" "-Drmq.logback.configurationFile=$CONF_DIR/rmq.tools.logback.xml" "-Duser.home=$home")
  exec "$JAVA" "${JVM_OPTS[@]}" -cp "$CLASSPATH" \
    org.apache.rocketmq.tools.command.MQAdminStartup "$@"
}

# The mode is the first argument; without arguments, ROCKETMQ_ROLE (set by
# the driver: namesrv, broker, controller or proxy) is used.
mode=${1:-${ROCKETMQ_ROLE:-}}
[[ $# -gt 0 ]] && shift
case $mode in
  namesrv) run_namesrv "$@" ;;
  broker) run_broker "$@" ;;
  mqcontroller | controller) run_controller "$@" ;;
  proxy) run_proxy "$@" ;;
  mqadmin) run_mqadmin "$@" ;;
  -h | --help | help | "") usage; [[ -n $mode ]] ;;
  *) exec "$mode" "$@" ;;
esac
