# shellcheck shell=bash disable=SC2034 # the U_* globals are for the caller
# Helpers for scripts/services: messages, URL parsing, TCP probes, free ports, Debian installs.
# Sourced, not executed. Everything human goes to stderr.

say() { echo "services: $*" >&2; }
die() { echo "services: error: $*" >&2; exit 1; }

# Run a command with the descriptors that must not leak into long-lived daemons closed:
# fd 3 is the real stdout (a `$(scripts/services)` pipe: a daemon holding it would make the
# caller wait forever) and fd 9 is the state-dir lock.
detached() { "$@" 3>&- 9>&-; }

# --- URLs -------------------------------------------------------------------------------------
# url_parse URL: sets U_SCHEME U_USER U_PASS (percent-decoded) U_USERINFO (raw) U_HOST (without
# IPv6 brackets) U_PORT (may be empty) U_PATH (raw, with leading /) U_QUERY (raw, with leading ?).
url_parse() {
  local url=$1 rest auth hostport
  [[ $url == *://* ]] || return 1
  U_SCHEME=${url%%://*}
  rest=${url#*://}
  auth=${rest%%[/?]*}
  rest=${rest:${#auth}}
  U_PATH=${rest%%\?*}
  U_QUERY=${rest:${#U_PATH}}
  if [[ $auth == *@* ]]; then U_USERINFO=${auth%@*}; hostport=${auth##*@}; else U_USERINFO=; hostport=$auth; fi
  if [[ $U_USERINFO == *:* ]]; then
    U_USER=$(url_decode "${U_USERINFO%%:*}"); U_PASS=$(url_decode "${U_USERINFO#*:}")
  else
    U_USER=$(url_decode "$U_USERINFO"); U_PASS=
  fi
  if [[ $hostport == \[* ]]; then
    U_HOST=${hostport#\[}; U_HOST=${U_HOST%%]*}
    U_PORT=${hostport#*]}; U_PORT=${U_PORT#:}
  elif [[ $hostport == *:* ]]; then
    U_HOST=${hostport%%:*}; U_PORT=${hostport#*:}
  else
    U_HOST=$hostport; U_PORT=
  fi
  [[ -z $U_PORT || $U_PORT =~ ^[0-9]+$ ]] || return 1
}

url_decode() { local s=${1//+/ }; printf '%b' "${s//%/\\x}"; }

# url_build HOST PORT PATH: the last parsed URL with its host, port and path replaced.
url_build() {
  local host=$1 port=$2 path=$3 auth=
  [[ $host == *:* ]] && host="[$host]"
  [ -n "$U_USERINFO" ] && auth="$U_USERINFO@"
  printf '%s://%s%s%s%s%s' "$U_SCHEME" "$auth" "$host" "${port:+:$port}" "$path" "$U_QUERY"
}

# Is HOST one of this machine's loopback names (or empty, meaning the local socket)?
is_local_host() { case $1 in '' | localhost | 127.* | ::1 | /*) return 0 ;; *) return 1 ;; esac; }

# A path for messages: relative to the repo root when inside it.
pretty_path() { case $1 in "$REPO_ROOT"/*) printf '%s' "${1#"$REPO_ROOT"/}" ;; *) printf '%s' "$1" ;; esac; }

# Single-quote a value for `export X=...` lines that any POSIX shell can eval.
shell_quote() { local q="'\\''"; printf "'%s'" "${1//\'/$q}"; }

# have NAME: the path of an executable NAME in PATH (bash's `command -v` also reports
# non-executable matches).
have() { local p; p=$(command -v "$1" 2>/dev/null) && [ -f "$p" ] && [ -x "$p" ] && echo "$p"; }

# --- network ----------------------------------------------------------------------------------
# tcp_open HOST PORT: does something accept TCP connections there? (3 s timeout)
# shellcheck disable=SC2016 # $1 and $2 are the inner bash's arguments
tcp_open() { timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "${1:-127.0.0.1}" "$2" 2>/dev/null; }

# redis_ping_tcp HOST PORT USER PASS: PING (after AUTH when PASS) over /dev/tcp, for machines
# without redis-cli. Prints PONG, or the server's error. Call it after tcp_open succeeded.
# shellcheck disable=SC2016 # RESP bulk-length markers, not expansions
redis_ping_tcp() (
  local line
  exec 4<>"/dev/tcp/$1/$2" || exit 1
  export LC_ALL=C # ${#x} in bytes
  if [ -n "$4" ]; then
    if [ -n "$3" ]; then
      printf '*3\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n' "${#3}" "$3" "${#4}" "$4" >&4
    else
      printf '*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n' "${#4}" "$4" >&4
    fi
    IFS= read -r -t 3 line <&4 || exit 1
    line=${line%$'\r'}
    [ "$line" = +OK ] || { echo "${line#-}"; exit 0; }
  fi
  printf '*1\r\n$4\r\nPING\r\n' >&4
  IFS= read -r -t 3 line <&4 || exit 1
  line=${line%$'\r'}
  if [ "$line" = +PONG ]; then echo PONG; else echo "${line#-}"; fi
)

# free_port HOST FIRST: the first port from FIRST on (20 tries) nothing listens on.
free_port() {
  local host=$1 p=$2
  for ((; p < $2 + 20; p++)); do
    tcp_open "$host" "$p" || { echo "$p"; return 0; }
  done
  return 1
}

# --- Debian packages --------------------------------------------------------------------------
may_install() { [ "$(id -u)" = 0 ] && [ -z "${NORM_NO_INSTALL:-}" ]; }

# apt_install PKG...: install Debian packages (apt-get update first, once per run).
APT_UPDATED=
apt_install() {
  say "installing Debian packages: $*"
  if [ -z "$APT_UPDATED" ]; then
    detached apt-get update -qq >&2 || die "apt-get update failed"
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive detached apt-get install -y -qq --no-install-recommends "$@" >&2 </dev/null ||
    die "apt-get install $* failed"
}

# need_install WHAT PKG: install PKG when allowed, else fail saying what to install.
need_install() {
  local what=$1 pkg=$2
  if may_install; then
    apt_install "$pkg"
  elif [ "$(id -u)" != 0 ]; then
    die "$what is not installed: install the Debian package '$pkg' (apt-get install $pkg), or run this as root to let it install it"
  else
    die "$what is not installed and NORM_NO_INSTALL is set: install the Debian package '$pkg' (apt-get install $pkg)"
  fi
}
