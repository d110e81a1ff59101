# debian-source.sh — sourced by the scripts that build a test peer from a newer Debian release's
# source package (build-libreswan.sh, build-strongswan6.sh): install missing build dependencies,
# and fetch an upstream tarball through a private apt setup that checks it against the suite's
# signed Sources index. The system's apt configuration is never changed.

# need_build_deps LABEL PACKAGE... — installs the missing ones from the system's own suite (root only).
need_build_deps() {
  local label=$1; shift
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  if [[ $(id -u) -ne 0 ]]; then
    echo "$label: missing build dependencies (${missing[*]}) and not root: install them" >&2; return 1
  fi
  echo "$label: installing ${missing[*]}" >&2
  apt-get update -qq -o DPkg::Lock::Timeout=300
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null
}

# fetch_orig_tarball LABEL SUITE SOURCE-PACKAGE TARBALL-NAME SHA256 SCRATCH-DIR — downloads the
# source package's upstream tarball of SUITE into SCRATCH-DIR/src (apt verifies it against the
# signed index; SHA256, when not empty, pins it further) and prints its path.
fetch_orig_tarball() {
  local label=$1 suite=$2 pkg=$3 name=$4 sha=$5 scratch=$6
  local apt_dir=$scratch/apt
  mkdir -p "$apt_dir/parts" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$scratch/src"
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" > "$apt_dir/sources.list"
  local apt_opts=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o "Dir::Etc::sourceparts=$apt_dir/parts"
                  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
                  -o APT::Sandbox::User=root)
  echo "$label: fetching $suite's source index" >&2
  apt-get "${apt_opts[@]}" update -qq
  (cd "$scratch/src" && apt-get "${apt_opts[@]}" source -qq --download-only --tar-only "$pkg" >/dev/null)
  local tarball=$scratch/src/$name
  if [[ ! -f $tarball ]]; then
    echo "$label: $suite no longer has $name (got: $(cd "$scratch/src" && ls))" >&2; return 1
  fi
  if [[ -n $sha ]] && ! echo "$sha  $tarball" | sha256sum -c --quiet -; then
    echo "$label: $tarball does not have the sha256 $suite listed" >&2; return 1
  fi
  echo "$tarball"
}
