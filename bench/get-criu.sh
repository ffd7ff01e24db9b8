#!/bin/sh
# Fetches CRIU 4.1.1 from Debian trixie into a private prefix (default
# /opt/criu4) for the benchmark's comparison, without installing anything:
# Debian bookworm's criu 3.17 fails on Linux 6.13+ ("vdso: Unexpected rt vDSO
# area bounds": it does not know the [vvar_vclock] mapping), and trixie's
# packages need a newer libc than bookworm's. So the packages are extracted with
# dpkg -x and CRIU runs with trixie's own loader and libraries, through a
# wrapper named `criu` in the prefix:
#
#   bench/get-criu.sh [PREFIX] && PATH=PREFIX:$PATH cargo bench --bench rckpt
#
# Needs root (apt-get), and network access to deb.debian.org.
set -eu
prefix=${1:-/opt/criu4}
work=$(mktemp -d /tmp/rckpt-criu.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs" "$prefix"
echo "deb [trusted=yes] http://deb.debian.org/debian trixie main" > "$work/sources.list"
apt() {
	"$@" -o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache" \
		-o APT::Get::AllowUnauthenticated=true
}
apt apt-get -q update >/dev/null
pkgs=$(apt apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
	--no-breaks --no-replaces --no-enhances --no-pre-depends criu |
	grep '^[a-z]' | grep -v '^debconf\|^perl\|^dpkg\|^install-info' | sort -u)
(cd "$work/debs" && apt apt-get -q download $pkgs >/dev/null 2>&1)
for d in "$work"/debs/*.deb; do
	dpkg -x "$d" "$prefix"
done
cat > "$prefix/criu" <<WRAP
#!/bin/sh
# CRIU from Debian trixie, with trixie's own libc (see rckpt's bench/get-criu.sh).
R=$prefix
exec \$R/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 --library-path \$R/usr/lib/x86_64-linux-gnu:\$R/lib/x86_64-linux-gnu \$R/usr/sbin/criu "\$@"
WRAP
chmod +x "$prefix/criu"
"$prefix/criu" --version
"$prefix/criu" check
