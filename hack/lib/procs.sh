# Start and stop the local cluster's processes through pid files in $LOCAL_DIR/pids/.
# A pid is only ever signalled when its command line names $LOCAL_DIR, so a stale
# pid file can never make us kill a stranger's process.
# shellcheck shell=bash

PID_DIR="$LOCAL_DIR/pids"

# procs::ours PID: true when PID is alive and was started for this $LOCAL_DIR. A process
# in the middle of exec (nohup becoming the component) briefly shows an empty command
# line, so a live pid is looked at again before it counts as a stranger.
procs::ours() {
  local cmdline i
  for ((i = 0; i < 5; i++)); do
    cmdline="$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)" || return 1
    [[ $cmdline == *"$LOCAL_DIR/"* ]] && return 0
    [[ -n $cmdline ]] && return 1
    sleep 0.05
  done
  return 1
}

# procs::start NAME LOGFILE CMD...: runs CMD in the background, records its pid.
procs::start() {
  local name=$1 logfile=$2
  shift 2
  mkdir -p "$PID_DIR" "$(dirname "$logfile")"
  log "starting $name: $* (log: $logfile)"
  nohup "$@" >>"$logfile" 2>&1 </dev/null &
  local pid=$! i
  echo "$pid" >"$PID_DIR/$name.pid"
  # Until nohup has exec'd the command, the pid's command line is still ours (bash).
  for ((i = 0; i < 50; i++)); do
    procs::ours "$pid" && return
    sleep 0.05
  done
}

# procs::pid NAME: the recorded pid of NAME if that process is ours and alive.
procs::pid() {
  local pid
  pid="$(cat "$PID_DIR/$1.pid" 2>/dev/null)" || return 1
  procs::ours "$pid" && echo "$pid"
}

# procs::stop NAME: TERM, then KILL after 10 s; forgets the pid file either way.
procs::stop() {
  local name=$1 pid i
  if pid="$(procs::pid "$name")"; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      procs::ours "$pid" || break
      sleep 0.1
    done
    if procs::ours "$pid"; then
      log "$name (pid $pid) did not exit after 10 s; sending KILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    # an exiting process loses its command line before it closes its sockets: wait
    # until it is gone (or only a zombie) so its port is free for the next start
    for ((i = 0; i < 100; i++)); do
      [[ -e /proc/$pid && $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || break
      sleep 0.1
    done
  fi
  rm -f "$PID_DIR/$name.pid"
}

# procs::stop_all: stops every process with a pid file, newest component first.
procs::stop_all() {
  local f
  # shellcheck disable=SC2045 # our own pid files, newest first
  for f in $(ls -t "$PID_DIR"/*.pid 2>/dev/null); do
    procs::stop "$(basename "$f" .pid)"
  done
}
