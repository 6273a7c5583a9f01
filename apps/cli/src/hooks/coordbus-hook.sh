#!/bin/sh
# coordbus agent hook, installed by `coordbus hooks install` (do not edit; re-run install).
# Usage: coordbus-hook.sh <EventName>   (hook JSON on stdin). Always exits 0 at once.
#
# It runs on every tool call of every session, so the common path is builtins plus one `head`:
# read a prefix of the hook JSON, pull `session_id` out with parameter expansion, and decide the
# throttle by comparing the session's stamp file (dated THROTTLE seconds into the future when a
# heartbeat fires) with a file created just now (`-nt`, builtin). Only when the window has passed
# does it start `coord heartbeat --ensure`, detached (double fork), silenced. SessionStart
# registers (task = first line of .claude-task, else "session"), SessionEnd deregisters, and any
# event named as a key of `.coordbus/hooks.yml` in the working directory (top level or under
# `hooks:`; a false match only costs a `hooks run` that finds nothing and exits 0) also starts
# `coordbus hooks run <Event>` with the hook JSON on its stdin. No coord, no Redis, bad input:
# nothing happens and it exits 0.
#
# The installer (apps/cli/src/hooks/hook-script.ts) replaces the two quoted placeholders below
# with the absolute paths of the installed binaries.
COORD=${COORDBUS_HOOK_COORD:-'@COORD@'}
COORDBUS=${COORDBUS_HOOK_COORDBUS:-'@COORDBUS@'}
THROTTLE=${COORD_HEARTBEAT_THROTTLE:-15}
STATE=${COORDBUS_HOOK_STATE:-${HOME:-/tmp}/.cache/coordbus/heartbeat}
event=$1

jobs=
if [ -f .coordbus/hooks.yml ] && grep -Eq "^[[:space:]]*[\"']?${event}[\"']?[[:space:]]*:" .coordbus/hooks.yml 2>/dev/null; then jobs=1; fi

# The hot path reads only a prefix: session_id comes first, tool output can be megabytes.
if [ "$event" = PostToolUse ] && [ -z "$jobs" ]; then input=$(head -c 4096 2>/dev/null); else input=$(cat 2>/dev/null); fi

sid=$COORD_SESSION_ID
if [ -z "$sid" ]; then
  case $input in
    *'"session_id"'*)
      rest=${input#*'"session_id"'}
      rest=${rest#"${rest%%[! :]*}"}
      case $rest in '"'*) rest=${rest#'"'}; sid=${rest%%'"'*} ;; esac ;;
  esac
fi
[ -n "$sid" ] || sid=$CLAUDE_SESSION_ID
case $sid in '' | *[!A-Za-z0-9._:@+-]*) sid= ;; esac

bg() { ( COORD_SESSION_ID=$sid COORD_PID=$PPID exec "$@" </dev/null >/dev/null 2>&1 & ) ; }

if [ -n "$jobs" ] && [ -x "$COORDBUS" ]; then
  ( printf '%s' "$input" | COORD_SESSION_ID=$sid "$COORDBUS" hooks run "$event" >/dev/null 2>&1 & )
fi

[ -n "$sid" ] && [ -x "$COORD" ] || exit 0
case $event in
  PostToolUse)
    now=$STATE/.now.$sid
    [ -d "$STATE" ] || mkdir -p "$STATE" 2>/dev/null || exit 0
    # `true`, not `:`: a failed redirection on a special builtin would end the script with 2.
    true > "$now" 2>/dev/null || exit 0
    # -nt is not POSIX but every sh a hook runs under (dash, bash, busybox ash) has it, and it
    # keeps the throttle free of forks.
    # shellcheck disable=SC3013
    [ "$STATE/$sid" -nt "$now" ] && exit 0
    touch -d "$THROTTLE seconds" "$STATE/$sid" 2>/dev/null || exit 0
    bg "$COORD" heartbeat --ensure ;;
  SessionStart)
    task=
    [ -f .claude-task ] && IFS= read -r task < .claude-task
    bg "$COORD" register --task "${task:-session}" ;;
  SessionEnd)
    bg "$COORD" dereg --reason session-end ;;
esac
exit 0
