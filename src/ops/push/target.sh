# hardway push: the program that runs on the target (POSIX sh), sent over the SSH connection as the argument of
# `sh -c` (or `sudo -n /bin/sh -c`): nothing is installed on the target beforehand. src/ops/push/protocol.rs
# describes what it reads on stdin and prints on stdout; src/ops/push/mod.rs the transaction.
#
# stdin:  hardway-push 1 / mode push|dry-run|rollback / root DIR / host NAME / manifest N / N lines / end,
#         then (push only, after it printed `need-bundle`) the bundle's bytes up to end of file.
# stdout: report lines (hello, receipt, drift, change, need-bundle, result, error); stderr: diagnostics.
# Exit status: 0 done, 1 refused or failed (an `error` line says why).

set -u
set -f
umask 077
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LC_ALL=C
export PATH LC_ALL
nl='
'

STAGING=
LOCKED=
NEWGEN=
GENDIR_MADE=
COMMITTED=
TEMPS=
MADE=
STATE_MADE=

say() { printf '%s\n' "$*"; }

# Undoes everything this run did before the commit point; after it, only drops the staging area and the lock.
undo() {
  if [ -z "$COMMITTED" ]; then
    while IFS= read -r t; do
      [ -n "$t" ] && rm -f -- "$t"
    done <<EOF
$TEMPS
EOF
    while IFS= read -r d; do
      [ -n "$d" ] && rmdir -- "$d" 2>/dev/null
    done <<EOF
$MADE
EOF
    [ -n "$NEWGEN" ] && rm -rf -- "$NEWGEN"
    [ -n "$GENDIR_MADE" ] && rmdir -- "$GENDIR_MADE" 2>/dev/null
  fi
  [ -n "$STAGING" ] && rm -rf -- "$STAGING"
  [ -n "$LOCKED" ] && rmdir -- "$LOCKED" 2>/dev/null
  if [ -z "$COMMITTED" ]; then
    while IFS= read -r d; do
      [ -n "$d" ] && rmdir -- "$d" 2>/dev/null
    done <<EOF
$STATE_MADE
EOF
  fi
  STAGING= LOCKED= NEWGEN= GENDIR_MADE= TEMPS= MADE= STATE_MADE=
  return 0
}

fail() {
  if [ -n "$COMMITTED" ]; then
    set -- "$* (the target is partly updated: push again)"
  fi
  say "error $*"
  printf 'hardway push: %s\n' "$*" >&2
  undo
  exit 1
}

# Until the commit point a signal (or a dropped connection: SIGPIPE) undoes this run; after it, none stops it.
trap 'undo; exit 1' HUP INT TERM PIPE

is_num() {
  case $1 in '' | *[!0-9]*) return 1 ;; esac
  return 0
}

is_sha() {
  case $1 in *[!0-9a-f]*) return 1 ;; esac
  [ ${#1} -eq 64 ]
}

# ---- preflight ---------------------------------------------------------------------------------------------

say "hello 1"
missing=
for t in cat chmod chown gzip id ls mkdir mv rm rmdir sha256sum tar; do
  command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
if command -v tar >/dev/null 2>&1; then
  case $(tar --version 2>/dev/null) in
    *"GNU tar"*) ;;
    *) missing="$missing GNU-tar(found-another-tar)" ;;
  esac
fi
[ -z "$missing" ] || fail "missing on the target:$missing (push needs POSIX sh, GNU tar, gzip, sha256sum, and cat chmod chown id ls mkdir mv rm rmdir)"
IS_ROOT=
[ "$(id -u)" = 0 ] && IS_ROOT=1

# ---- header ------------------------------------------------------------------------------------------------

VAL=
read_field() {
  IFS= read -r l || fail "the header ends before its $1 line"
  case $l in
    "$1 "*) VAL=${l#"$1 "} ;;
    *) fail "header: expected a $1 line, found: $l" ;;
  esac
}

IFS= read -r l || fail "no header on stdin"
[ "$l" = "hardway-push 1" ] || fail "not a hardway push header (version 1): $l"
read_field mode
MODE=$VAL
read_field root
ROOT=$VAL
read_field host
HOST=$VAL
read_field manifest
N=$VAL
case $MODE in push | dry-run | rollback) ;; *) fail "unknown mode $MODE" ;; esac
case $ROOT in /*) ;; *) fail "root $ROOT is not an absolute path" ;; esac
case $ROOT in *//* | */./* | */. | */../* | */.. | *[!A-Za-z0-9._/@+=-]*) fail "root $ROOT: use a plain absolute path" ;; esac
case $HOST in '' | *[!a-z0-9-]*) fail "host name $HOST is not a DNS label" ;; esac
is_num "$N" || fail "manifest line count $N is not a number"
R=${ROOT%/}
[ -d "$ROOT" ] || fail "root directory $ROOT does not exist on the target"
STATE=$R/var/lib/hardway

MAN=
i=0
while [ "$i" -lt "$N" ]; do
  IFS= read -r l || fail "the manifest ends after $i of $N lines"
  if [ "$i" -eq 0 ]; then MAN=$l; else MAN=$MAN$nl$l; fi
  i=$((i + 1))
done
IFS= read -r l || fail "the header has no end line"
[ "$l" = end ] || fail "header: expected end, found: $l"

# ---- the manifest ------------------------------------------------------------------------------------------

check_path() {
  case $1 in /*) ;; *) fail "$2: $1 is not an absolute path" ;; esac
  case $1 in
    */ | *//* | */./* | */. | */../* | */..) fail "$2: $1 has an empty, '.' or '..' component" ;;
  esac
  case $1 in *[!A-Za-z0-9._/@+=-]*) fail "$2: $1 has a character outside A-Z a-z 0-9 . _ / @ + = -" ;; esac
  case $1 in /var/lib/hardway | /var/lib/hardway/*) fail "$2: $1 is hardway's own state directory" ;; esac
  return 0
}

# Parses $MAN: sets M_HOST, M_SHA, ENTRIES (validated entry lines), NAMES (the tar member names expected, in
# order), SEEN and DIRSEEN (|path|path| sets).
parse_manifest() {
  ln=0
  ENTRIES=
  NAMES=
  SEEN='|'
  DIRSEEN='|'
  M_HOST=
  M_SHA=
  while IFS= read -r l; do
    ln=$((ln + 1))
    w="manifest line $ln"
    case $ln in
      1) [ "$l" = "hardway bundle manifest v1" ] || fail "$w: not a hardway bundle manifest (v1)" ;;
      2) case $l in "host "*) M_HOST=${l#host } ;; *) fail "$w: expected host" ;; esac ;;
      3) case $l in "bundle-size "*) is_num "${l#bundle-size }" || fail "$w: bad size" ;; *) fail "$w: expected bundle-size" ;; esac ;;
      4)
        case $l in "bundle-sha256 "*) M_SHA=${l#bundle-sha256 } ;; *) fail "$w: expected bundle-sha256" ;; esac
        is_sha "$M_SHA" || fail "$w: bundle-sha256 is not 64 lowercase hex digits"
        ;;
      5) case $l in "bundle-blake3 "*) ;; *) fail "$w: expected bundle-blake3" ;; esac ;;
      *)
        set -- $l
        case ${1:-} in
          d)
            [ $# -eq 3 ] || fail "$w: expected 'd MODE PATH'"
            m=$2 p=$3
            name=${p#/}/
            ;;
          f)
            [ $# -eq 5 ] || fail "$w: expected 'f MODE SHA256 SIZE PATH'"
            m=$2 p=$5
            is_sha "$3" || fail "$w: $p: the SHA-256 is not 64 lowercase hex digits"
            is_num "$4" || fail "$w: $p: the size is not a number"
            name=${p#/}
            ;;
          *) fail "$w: unknown entry type ${1:-}" ;;
        esac
        check_path "$p" "$w"
        case $m in
          [01][0-7][0-7][0-7]) ;;
          [2-7][0-7][0-7][0-7]) fail "$w: $p: setuid or setgid mode $m refused" ;;
          *) fail "$w: $p: mode $m is not four octal digits" ;;
        esac
        parent=${p%/*}
        if [ -n "$parent" ]; then
          case $DIRSEEN in *"|$parent|"*) ;; *) fail "$w: $p: its parent directory is not an earlier entry" ;; esac
        fi
        case $SEEN in *"|$p|"*) fail "$w: $p is listed twice" ;; esac
        SEEN=$SEEN$p'|'
        [ "$1" = d ] && DIRSEEN=$DIRSEEN$p'|'
        ENTRIES=$ENTRIES$l$nl
        NAMES=$NAMES$name$nl
        ;;
    esac
  done <<EOF
$MAN
EOF
  [ "$ln" -ge 5 ] || fail "the manifest is truncated"
  [ "$M_HOST" = "$HOST" ] || fail "the manifest is host $M_HOST's, not $HOST's"
}

# ---- the target's files ------------------------------------------------------------------------------------

PERM=
# `ls -l` mode string (-rwsr-x--T...) to four octal digits in PERM.
perm() {
  s=${1#?}
  v=0
  i=0
  for b in 256 128 64 32 16 8 4 2 1; do
    c=${s%"${s#?}"}
    s=${s#?}
    i=$((i + 1))
    case $c in
      r | w | x) v=$((v + b)) ;;
      -) ;;
      s) v=$((v + b)); [ $i -eq 3 ] && v=$((v + 2048)); [ $i -eq 6 ] && v=$((v + 1024)) ;;
      S) [ $i -eq 3 ] && v=$((v + 2048)); [ $i -eq 6 ] && v=$((v + 1024)) ;;
      t) v=$((v + b + 512)) ;;
      T) v=$((v + 512)) ;;
      *) fail "cannot read the mode string $1" ;;
    esac
  done
  PERM=$((v / 512))$((v / 64 % 8))$((v / 8 % 8))$((v % 8))
}

# What is at path $1 (a target path, root prefix included): K (absent, file, dir, link, other), and for a file
# or directory CM (mode), CU, CG (numeric owner).
inspect() {
  K=absent CM= CU= CG=
  if [ -L "$1" ]; then K=link; return 0
  elif [ -d "$1" ]; then K=dir
  elif [ -f "$1" ]; then K=file
  elif [ -e "$1" ]; then K=other; return 0
  else return 0
  fi
  set -- $(ls -ldn -- "$1" </dev/null)
  [ $# -ge 4 ] || fail "cannot list $1"
  perm "$1"
  CM=$PERM CU=$3 CG=$4
}

SHA=
sha_of() {
  set -- $(sha256sum <"$1")
  SHA=${1:-}
}

# ---- the receipt -------------------------------------------------------------------------------------------

RC_GEN= RC_PREV= RC_SHA= RC_HOST= RC_ENTRIES= RC_CREATED='|'
read_receipt() {
  RC_GEN= RC_PREV= RC_SHA= RC_HOST= RC_ENTRIES= RC_CREATED='|'
  [ -e "$STATE/receipt" ] || return 0
  ln=0
  while IFS= read -r l; do
    ln=$((ln + 1))
    case $ln:$l in
      "1:hardway receipt v1") ;;
      1:*) fail "$STATE/receipt is not a hardway receipt (v1)" ;;
      *:"host "*) RC_HOST=${l#host } ;;
      *:"generation "*) RC_GEN=${l#generation } ;;
      *:"previous "*) RC_PREV=${l#previous } ;;
      *:"bundle-sha256 "*) RC_SHA=${l#bundle-sha256 } ;;
      *:"pushed-at "*) ;;
      *:"c "*) RC_CREATED=$RC_CREATED${l#c }'|' ;;
      *:"d "* | *:"f "*) RC_ENTRIES=$RC_ENTRIES$l$nl ;;
      *) fail "$STATE/receipt line $ln is not understood: $l" ;;
    esac
  done <"$STATE/receipt"
  is_num "$RC_GEN" && is_sha "$RC_SHA" || fail "$STATE/receipt lacks its generation or bundle-sha256"
  [ "$RC_PREV" = none ] || is_num "$RC_PREV" || fail "$STATE/receipt: bad previous generation $RC_PREV"
}

read_receipt
if [ -n "$RC_HOST" ] && [ "$RC_HOST" != "$HOST" ]; then
  fail "this target holds host $RC_HOST's files ($STATE/receipt), not $HOST's: check the recipe's ip/ssh for $HOST"
fi
if [ -n "$RC_GEN" ]; then say "receipt $RC_GEN $RC_SHA"; else say "receipt none"; fi

BUNDLE=
case $MODE in
  push | dry-run) parse_manifest ;;
  rollback)
    [ -n "$RC_GEN" ] || fail "nothing to roll back: no receipt in $STATE"
    [ "$RC_PREV" != none ] || fail "no previous generation to roll back to: generation $RC_GEN is the first"
    G=$STATE/generations/$RC_PREV
    [ -f "$G/manifest" ] && [ -f "$G/bundle.tar.gz" ] || fail "generation $RC_PREV is not kept in $G"
    MAN=$(cat "$G/manifest") || fail "cannot read $G/manifest"
    parse_manifest
    BUNDLE=$G/bundle.tar.gz
    ;;
esac

# ---- drift: the files as the receipt left them -------------------------------------------------------------

while IFS= read -r l; do
  [ -n "$l" ] || continue
  set -- $l
  if [ "$1" = f ]; then
    m=$2 h=$3 p=$5
    inspect "$R$p"
    case $K in
      absent) say "drift missing $p" ;;
      file)
        sha_of "$R$p"
        [ "$SHA" = "$h" ] || say "drift content $p"
        [ "$CM" = "$m" ] || say "drift mode $m $CM $p"
        ;;
      *) say "drift type $p" ;;
    esac
  else
    p=$3
    inspect "$R$p"
    case $K in
      absent) say "drift missing $p" ;;
      dir) ;;
      *) say "drift type $p" ;;
    esac
  fi
done <<EOF
$RC_ENTRIES
EOF

# ---- the changes: the new manifest against the target's files ----------------------------------------------

CHANGES=0
NEWDIRS=
INSTALL=
REMOVE=
RMDIRS=
while IFS= read -r l; do
  [ -n "$l" ] || continue
  set -- $l
  if [ "$1" = d ]; then
    m=$2 p=$3
    inspect "$R$p"
    case $K in
      absent) say "change mkdir $m $p"; NEWDIRS=$NEWDIRS"$m $p$nl"; CHANGES=$((CHANGES + 1)) ;;
      dir) ;;
      link) fail "$R$p is a symbolic link on the target: refusing to write through it" ;;
      *) fail "$R$p exists on the target and is not a directory" ;;
    esac
  else
    m=$2 h=$3 p=$5
    inspect "$R$p"
    case $K in
      absent) say "change add $p"; INSTALL=$INSTALL"$m $p$nl"; CHANGES=$((CHANGES + 1)) ;;
      file)
        sha_of "$R$p"
        c=
        [ "$SHA" = "$h" ] || { say "change content $p"; c=1; }
        [ "$CM" = "$m" ] || { say "change mode $CM $m $p"; c=1; }
        if [ -n "$IS_ROOT" ] && { [ "$CU" != 0 ] || [ "$CG" != 0 ]; }; then say "change owner $CU:$CG 0:0 $p"; c=1; fi
        if [ -n "$c" ]; then INSTALL=$INSTALL"$m $p$nl"; CHANGES=$((CHANGES + 1)); fi
        ;;
      link) fail "$R$p is a symbolic link on the target: refusing to replace it" ;;
      dir) fail "$R$p is a directory on the target, the bundle has a file there" ;;
      *) fail "$R$p exists on the target and is not a regular file" ;;
    esac
  fi
done <<EOF
$ENTRIES
EOF
# Files the receipt lists that the new manifest does not; directories hardway made that it no longer lists
# (deepest first).
while IFS= read -r l; do
  [ -n "$l" ] || continue
  set -- $l
  if [ "$1" = f ]; then
    p=$5
    case $SEEN in *"|$p|"*) continue ;; esac
    inspect "$R$p"
    case $K in
      file | link) say "change remove $p"; REMOVE=$REMOVE$p$nl; CHANGES=$((CHANGES + 1)) ;;
      absent) ;;
      *) say "note $R$p is no longer in the bundle but is not a file: left alone" ;;
    esac
  else
    p=$3
    case $DIRSEEN in *"|$p|"*) continue ;; esac
    case $RC_CREATED in *"|$p|"*) ;; *) continue ;; esac
    [ -d "$R$p" ] && [ ! -L "$R$p" ] || continue
    say "change rmdir $p"
    RMDIRS=$p$nl$RMDIRS
    CHANGES=$((CHANGES + 1))
  fi
done <<EOF
$RC_ENTRIES
EOF

if [ "$MODE" = dry-run ]; then
  say "result dry-run $CHANGES"
  exit 0
fi
if [ "$MODE" = push ] && [ "$RC_SHA" = "$M_SHA" ] && [ "$CHANGES" -eq 0 ]; then
  say "result unchanged $RC_GEN $M_SHA"
  exit 0
fi

# ---- staging: the state directory, the lock, the bundle ----------------------------------------------------

for d in "$R/var" "$R/var/lib" "$STATE"; do
  if [ ! -d "$d" ]; then
    mkdir -m 0755 -- "$d" || fail "cannot create $d"
    STATE_MADE=$d$nl$STATE_MADE
  fi
done
chmod 0700 "$STATE" || fail "cannot chmod $STATE"
mkdir -- "$STATE/lock" 2>/dev/null || fail "another push holds $STATE/lock (if none is running, remove that directory)"
LOCKED=$STATE/lock
OLD_GEN=$RC_GEN OLD_SHA=$RC_SHA
read_receipt
[ "$RC_GEN:$RC_SHA" = "$OLD_GEN:$OLD_SHA" ] || fail "the receipt changed while this push looked at it: push again"
STAGING=$STATE/staging.$$
mkdir -- "$STAGING" || fail "cannot create $STAGING"

if [ "$MODE" = push ]; then
  say "need-bundle"
  BUNDLE=$STAGING/bundle.tar.gz
  cat >"$BUNDLE" || fail "receiving the bundle failed"
fi
sha_of "$BUNDLE"
[ "$SHA" = "$M_SHA" ] || fail "the bundle received has SHA-256 $SHA, not the manifest's $M_SHA: refused, nothing changed"

# Every member: a file or a directory, no setuid/setgid bit, exactly the manifest's names in its order. Listed
# with -P, so that tar shows absolute and `..` names as they are rather than as it would sanitise them.
tar -tvPzf "$BUNDLE" >"$STAGING/list" 2>"$STAGING/err" || fail "tar cannot list the bundle: $(cat "$STAGING/err")"
while IFS= read -r l; do
  case $l in
    -* | d*) ;;
    l*) fail "bundle member refused, a symbolic link: $l" ;;
    h*) fail "bundle member refused, a hard link: $l" ;;
    c* | b*) fail "bundle member refused, a device: $l" ;;
    p*) fail "bundle member refused, a FIFO: $l" ;;
    *) fail "bundle member refused, neither a file nor a directory: $l" ;;
  esac
  case $l in ???[sS]* | ??????[sS]*) fail "bundle member refused, setuid or setgid: $l" ;; esac
done <"$STAGING/list"
tar -tPzf "$BUNDLE" >"$STAGING/names" 2>"$STAGING/err" || fail "tar cannot list the bundle: $(cat "$STAGING/err")"
while IFS= read -r l; do
  n=/${l%/}
  case $SEEN in *"|$n|"*) ;; *) fail "bundle member refused, not in the manifest: $l" ;; esac
done <"$STAGING/names"
FOUND=$(cat "$STAGING/names")
[ "$FOUND" = "${NAMES%"$nl"}" ] || fail "the bundle's members are not the manifest's entries (missing, repeated, reordered or of another type)"

mkdir -- "$STAGING/tree" || fail "cannot create $STAGING/tree"
tar -xzpmf "$BUNDLE" -C "$STAGING/tree" --no-same-owner 2>"$STAGING/err" || fail "tar cannot unpack the bundle: $(cat "$STAGING/err")"
while IFS= read -r l; do
  [ -n "$l" ] || continue
  set -- $l
  if [ "$1" = f ]; then
    m=$2 h=$3 p=$5
    inspect "$STAGING/tree$p"
    [ "$K" = file ] || fail "staged $p is not a regular file"
    sha_of "$STAGING/tree$p"
    [ "$SHA" = "$h" ] || fail "staged $p has SHA-256 $SHA, not the manifest's $h"
    [ "$CM" = "$m" ] || fail "staged $p has mode $CM, not the manifest's $m"
  else
    inspect "$STAGING/tree$3"
    [ "$K" = dir ] || fail "staged $3 is not a directory"
  fi
done <<EOF
$ENTRIES
EOF

# ---- prepare: new directories, the generation's copy, each new file beside its destination -----------------

PREV=${RC_GEN:-none}
if [ "$MODE" = rollback ]; then
  GEN=$RC_PREV
elif [ "$RC_SHA" = "$M_SHA" ]; then
  GEN=$RC_GEN PREV=${RC_PREV:-none}
else
  max=${RC_GEN:-0}
  if [ -d "$STATE/generations" ]; then
    for g in $(ls "$STATE/generations"); do
      is_num "$g" && [ "$g" -gt "$max" ] && max=$g
    done
  fi
  GEN=$((max + 1))
  if [ ! -d "$STATE/generations" ]; then
    mkdir -- "$STATE/generations" || fail "cannot create $STATE/generations"
    GENDIR_MADE=$STATE/generations
  fi
  mkdir -- "$STATE/generations/$GEN" || fail "cannot create $STATE/generations/$GEN"
  NEWGEN=$STATE/generations/$GEN
  mv -- "$BUNDLE" "$NEWGEN/bundle.tar.gz" || fail "cannot keep the bundle in $NEWGEN"
  printf '%s\n' "$MAN" >"$NEWGEN/manifest" || fail "cannot keep the manifest in $NEWGEN"
fi

MADEPATHS='|'
while IFS= read -r l; do
  [ -n "$l" ] || continue
  m=${l%% *} p=${l#* }
  # /var and /var/lib may have just been made for the state directory (a fresh root).
  if [ ! -d "$R$p" ]; then
    mkdir -- "$R$p" || fail "cannot create $R$p"
    MADE=$R$p$nl$MADE
  fi
  MADEPATHS=$MADEPATHS$p'|'
  if [ -n "$IS_ROOT" ]; then chown 0:0 "$R$p" || fail "cannot chown $R$p"; fi
  chmod "$m" "$R$p" || fail "cannot chmod $R$p"
done <<EOF
$NEWDIRS
EOF
PLACED=
while IFS= read -r l; do
  [ -n "$l" ] || continue
  m=${l%% *} p=${l#* }
  t=$R${p%/*}/.hardway-new.$$.${p##*/}
  mv -- "$STAGING/tree$p" "$t" || fail "cannot place $t"
  TEMPS=$TEMPS$t$nl
  if [ -n "$IS_ROOT" ]; then chown 0:0 "$t" || fail "cannot chown $t"; fi
  chmod "$m" "$t" || fail "cannot chmod $t"
  PLACED=$PLACED$p$nl
done <<EOF
$INSTALL
EOF

# ---- commit: rename into place, remove what the bundle no longer has, write the receipt --------------------

trap '' HUP INT TERM PIPE
COMMITTED=1
while IFS= read -r p; do
  [ -n "$p" ] || continue
  mv -f -- "$R${p%/*}/.hardway-new.$$.${p##*/}" "$R$p" || fail "cannot move the new $p into place"
done <<EOF
$PLACED
EOF
while IFS= read -r p; do
  [ -n "$p" ] || continue
  rm -f -- "$R$p" || fail "cannot remove $R$p"
done <<EOF
$REMOVE
EOF
while IFS= read -r p; do
  [ -n "$p" ] || continue
  rmdir -- "$R$p" 2>/dev/null || say "note $R$p is not empty: left in place"
done <<EOF
$RMDIRS
EOF

{
  say "hardway receipt v1"
  say "host $HOST"
  say "generation $GEN"
  say "previous $PREV"
  say "bundle-sha256 $M_SHA"
  if command -v date >/dev/null 2>&1; then say "pushed-at $(date -u +%Y-%m-%dT%H:%M:%SZ)"; fi
  while IFS= read -r l; do
    [ -n "$l" ] || continue
    set -- $l
    [ "$1" = d ] || continue
    case $MADEPATHS$RC_CREATED in *"|$3|"*) say "c $3" ;; esac
  done <<EOF
$ENTRIES
EOF
  printf '%s' "$ENTRIES"
} >"$STATE/receipt.tmp.$$" || fail "cannot write $STATE/receipt.tmp.$$"
mv -f -- "$STATE/receipt.tmp.$$" "$STATE/receipt" || fail "cannot move the receipt into place"

# Keep this generation and the one before it, for --rollback.
for g in $(ls "$STATE/generations" 2>/dev/null); do
  [ "$g" = "$GEN" ] || [ "$g" = "$PREV" ] || rm -rf -- "$STATE/generations/$g"
done
undo
if [ "$MODE" = rollback ]; then
  say "result rolled-back $GEN $M_SHA"
else
  say "result updated $GEN $M_SHA"
fi
exit 0
