#!/bin/sh
# coordbus agent hook, installed by `coordbus hooks install` (do not edit; re-run install).
# Usage: coordbus-hook.sh <EventName>   (hook JSON on stdin). Always exits 0 at once.
# Every tool call runs it twice (PreToolUse, PostToolUse), so their path comes first and exits
# before the code for everything else: dash parses a script as it runs it, and a throttled tool
# call never parses what follows its exit. What the hook does and why: the notes at the end.
# Nothing it runs may write to Claude Code's view of the hook: stderr goes nowhere, once.
exec 2>/dev/null
COORD=${COORDBUS_HOOK_COORD:-'@COORD@'}
COORDBUS=${COORDBUS_HOOK_COORDBUS:-'@COORDBUS@'}
ENVFILE=${COORDBUS_HOOK_ENV:-'@ENVFILE@'}
# `command .`: a damaged env file is an error of the `.`, not the end of the shell (dash exits 2
# on it otherwise, and exit 2 from a PreToolUse hook blocks the tool call).
# shellcheck source=/dev/null
[ -f "$ENVFILE" ] && command . "$ENVFILE"
STATE=${COORDBUS_HOOK_STATE:-${HOME:-/tmp}/.cache/coordbus/heartbeat}
event=$1
case $event in '' | *[!A-Za-z]*) exit 0 ;; esac

# jobs=1 when a line of .coordbus/hooks.yml keys this event (`  "Stop" :`): read with builtins,
# not grep, as this runs on every tool call in a project that has the file.
jobs=
if [ -f .coordbus/hooks.yml ]; then
  while IFS= read -r l || [ -n "$l" ]; do
    l=${l#"${l%%[![:space:]]*}"}
    l=${l#[\"\']}
    case $l in "$event"*) ;; *) continue ;; esac
    l=${l#"$event"}
    l=${l#[\"\']}
    l=${l#"${l%%[![:space:]]*}"}
    case $l in :*) jobs=1; break ;; esac
  done <.coordbus/hooks.yml
fi

# Only a job gets the whole hook JSON (input), which can be megabytes (tool output, a long
# message): the lookups read a prefix (text), 4 KB for a tool call, 64 KB for any other event. A
# tool call's fields are looked up before the tool's response: session, tool and input come first.
case $event in PreToolUse | PostToolUse | MessageDisplay) hot=1 lim=4096 ;; *) hot='' lim=65536 ;; esac
if [ -n "$jobs" ]; then
  input=$(LC_ALL=C cat)
  text=$(printf '%s' "$input" | LC_ALL=C head -c "$lim")
else
  text=$(LC_ALL=C head -c "$lim")
fi
if [ -n "$hot" ]; then src=${text%%'"tool_response"'*}; else src=$text; fi

# Field splitting at '"' is the one linear pass over a string a POSIX shell has: `${src#*"key"}`
# costs dash time quadratic in the key's offset (0.1-0.2 ms for a tool input 250 bytes in).
# `%%` (linear) gives the text before the key; its field count is the key's index in src's fields.
set -f
nf() { n=$#; }
# v= the raw (still JSON-escaped) string value of the first "$1": "..." in src ('' if none, a
# value cut by the prefix ends where it does); sep= the text between that key and its value.
jget() {
  pre=${src%%"\"$1\""*}
  [ "${#pre}" -lt "${#src}" ] || { v='' sep=''; return 0; }
  IFS='"'
  # shellcheck disable=SC2086 # split at '"' on purpose (globbing is off)
  nf $pre
  # shellcheck disable=SC2086
  set -- $src
  unset IFS
  # A field ends at each '"': none ends at a '"' that starts the text or follows another.
  case $pre in '' | *'"') n=$((n + 1)) ;; esac
  # Fields n+1, n+2, n+3: the key, what follows it, the value. eval sees only the indices.
  n=$((n + 2))
  eval "sep=\${$n-} v=\${$((n + 1))-}"
  case $sep in '' | *[!\ :]*) v=''; return 0 ;; esac
  # A field ending in an odd number of backslashes ended at an escaped quote: the string goes on,
  # up to 8 KB (the stream keeps 1024 characters of a value; each turn here copies it).
  while :; do
    case $v in *\\) ;; *) return 0 ;; esac
    t=$v
    while :; do case $t in *\\\\) t=${t%\\\\} ;; *) break ;; esac; done
    case $t in *\\) ;; *) return 0 ;; esac
    n=$((n + 1))
    v=$v'"'
    [ "$#" -gt "$n" ] && [ "${#v}" -lt 8192 ] || return 0
    eval "v=\$v\${$((n + 1))}"
  done
}

sid=$COORD_SESSION_ID
if [ -z "$sid" ]; then jget session_id; sid=$v; fi
[ -n "$sid" ] || sid=$CLAUDE_SESSION_ID
case $sid in '' | *[!A-Za-z0-9._:@+-]*) exit 0 ;; esac

if [ -n "$jobs" ] && [ -x "$COORDBUS" ]; then
  ( printf '%s' "$input" | COORD_SESSION_ID=$sid "$COORDBUS" hooks run "$event" >/dev/null 2>&1 & )
fi

[ -d "$STATE" ] || mkdir -p "$STATE" || exit 0
if [ -r /proc/uptime ]; then read -r now _ </proc/uptime; else now=$(date +%s); fi
case $now in '' | *[!0-9.]*) exit 0 ;; esac
secs=${now%.*}

# One activity line: clock, event, session, tool, path, command, exit code, message. A tool call
# looks up only what its tool has.
path='' cmd='' code='' msg=''
jget tool_name; tool=$v
case $tool in
  '') ;;
  Bash) jget command; cmd=$v ;;
  NotebookEdit) jget notebook_path; path=$v ;;
  Glob | Grep | LS) jget path; path=$v ;;
  *) jget file_path; path=$v ;;
esac
# A tool's exit status is known once it ran (PostToolUse, in its response) and on the non-tool
# events that carry one.
if [ "$event" = PostToolUse ] || [ -z "$hot" ]; then
  case $text in
    *'"exit_code"'*)
      src=$text
      jget exit_code
      r=${sep#"${sep%%[! :]*}"}
      code=${r%%[!0-9-]*} ;;
  esac
fi
if [ -z "$hot" ]; then
  jget message; msg=$v
  [ -n "$msg" ] || { jget error; msg=$v; }
fi
spool=$STATE/$sid.activity
printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$now" "$event" "$sid" "$tool" "$path" "$cmd" "$code" "$msg" >>"$spool" || exit 0

# The throttle: the stamp holds the clock second the next heartbeat is due; one further ahead
# than a window (a reboot reset the uptime clock) counts as due.
if [ -n "$hot" ]; then
  fire=
  if [ "$event" = PostToolUse ]; then
    THROTTLE=${COORD_HEARTBEAT_THROTTLE:-15}
    case $THROTTLE in '' | *[!0-9]*) THROTTLE=15 ;; esac
    due=0
    [ -f "$STATE/$sid" ] && read -r due <"$STATE/$sid"
    case $due in '' | *[!0-9]*) due=0 ;; esac
    if [ "$secs" -ge "$due" ] || [ $((due - secs)) -gt "$THROTTLE" ]; then fire=1; fi
  fi
  [ -n "$fire" ] || exit 0
fi

# ---- Below: the call that fires a heartbeat, and every event other than a tool call. ----

ACTIVITY_LUA='@ACTIVITY_LUA@'

bg() { ( COORD_SESSION_ID=$sid COORD_PID=$PPID exec "$@" </dev/null >/dev/null 2>&1 & ) ; }

# Sends the spool in the background: renamed first, so lines appended meanwhile wait for the next.
flush() {
  command -v redis-cli >/dev/null 2>&1 || { true >"$spool"; return 0; }
  f=$spool.$$
  mv -f "$spool" "$f" || return 0
  ns=${COORDBUS_NAMESPACE:+$COORDBUS_NAMESPACE:}
  ( (redis-cli -u "${REDIS_URL:-redis://127.0.0.1:6379}" -x EVAL "$ACTIVITY_LUA" 2 \
    "${ns}activity:{activity}" "${ns}activity:{activity}:last" \
    "${COORDBUS_ACTIVITY_MAXLEN:-10000}" "$now" <"$f" >/dev/null 2>&1; rm -f "$f") </dev/null >/dev/null 2>&1 & )
}

if [ -n "$hot" ]; then
  printf '%s\n' $((secs + THROTTLE)) >"$STATE/$sid" || exit 0
  flush
  [ -x "$COORD" ] && bg "$COORD" heartbeat --ensure
  exit 0
fi

flush
[ -x "$COORD" ] || exit 0
case $event in
  SessionStart)
    task=
    [ -f .claude-task ] && IFS= read -r task <.claude-task
    bg "$COORD" register --task "${task:-session}" ;;
  SessionEnd)
    bg "$COORD" dereg --reason session-end ;;
esac
exit 0

# Notes (never parsed: every path exits above).
#
# A tool call is builtins plus one `head`: read a prefix of the hook JSON, pull session_id,
# tool_name, the file path or command (and PostToolUse's exit_code) out of it, append one line to
# the session's activity spool, and decide the heartbeat throttle from a clock read with `read`
# (/proc/uptime; `date +%s` where there is no /proc) against the due time stored in the session's
# stamp file. The `head` is the one process it cannot do without: `read` takes a byte per system
# call up to a newline, and the hook JSON is one line that can be megabytes long (tool output).
# It runs with LC_ALL=C (a byte count needs no locale; loading one is a dozen more files per
# call). Only when the window (COORD_HEARTBEAT_THROTTLE seconds, 15) has passed does it start,
# detached and silenced, `coord heartbeat --ensure` and one redis-cli that sends the spool
# (libs/coord's activity-2.lua writes the activity stream and each session's latest entry).
# Every other event (Notification, Stop, ...) is rare: it sends the spool at once. SessionStart
# registers (task = first line of .claude-task, else "session"), SessionEnd deregisters, and any
# event named as a key of `.coordbus/hooks.yml` in the working directory (top level or under
# `hooks:`; a false match only costs a `hooks run` that finds nothing and exits 0) also starts
# `coordbus hooks run <Event>` with the hook JSON on its stdin. No coord, no redis-cli, no
# Redis, bad input: nothing happens and it exits 0.
#
# The installer (apps/cli/src/hooks/hook-script.ts) replaces the quoted placeholders with the
# absolute paths of the installed binaries and env file, and the activity script's text. The
# env file carries the deployment (REDIS_URL, COORDBUS_NAMESPACE, ...) as installed, so the hook
# does not depend on Claude Code's environment; what it sets wins over that environment.
