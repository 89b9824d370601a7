# shellcheck shell=bash
# Java services from Maven Central: a Java 17+ runtime, Maven, a runtime classpath resolved
# once per pom into DOORSTEP_CACHE_DIR, and a memory check before a JVM starts.
# Sourced after common.sh (note, die, apt_install, LOG_DIR).

# Major version of `java` on PATH (17 for "17.0.15", 8 for "1.8.0_x"), or 0.
java_major() {
  local v
  v=$(java -version 2>&1 | sed -nE 's/.*version "([0-9]+)(\.([0-9]+))?.*/\1 \3/p' | head -n 1)
  read -r a b <<<"$v"
  if [[ -z ${a:-} ]]; then echo 0; elif [[ $a == 1 ]]; then echo "${b:-0}"; else echo "$a"; fi
}

# Installs a Java 17 runtime and Maven when missing.
ensure_java() {
  if ! command -v java >/dev/null || (($(java_major) < 17)); then
    apt_install openjdk-17-jre-headless
    (($(java_major) >= 17)) || die "java: Kafka 4 and Cassandra 5 need Java 17 or newer, and 'java' on PATH is $(java -version 2>&1 | head -n 1); put a JDK 17 first on PATH"
  fi
  command -v mvn >/dev/null || apt_install maven
  command -v mvn >/dev/null || die "maven: 'mvn' is still missing after apt-get install maven; install Maven 3 and put it on PATH"
}

# Resolves the runtime dependencies of POM into a cache directory named after the pom's
# content and prints that directory. Reused while the pom is unchanged; a failed or cut
# fetch leaves nothing behind that looks complete. Usage: maven_classpath NAME POM
maven_classpath() {
  local name=$1 pom=$2 sum dir tmp log t0
  sum=$(sha256sum "$pom" | cut -c1-12)
  dir="$DOORSTEP_CACHE_DIR/maven/$name-$sum"
  if [[ -f $dir/.complete ]]; then
    echo "$dir"
    return 0
  fi
  ensure_java
  mkdir -p "$DOORSTEP_CACHE_DIR/maven" "$LOG_DIR"
  log="$LOG_DIR/maven-$name.log"
  tmp="$dir.tmp.$$"
  rm -rf "$tmp"
  t0=$(now_ms)
  note "$name: fetching the runtime from Maven Central (mvn dependency:copy-dependencies, once; log: $log)"
  if ! mvn -B -q -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$tmp" >"$log" 2>&1; then
    rm -rf "$tmp"
    tail -n 8 "$log" >&2
    die "$name: the Maven fetch failed (is Maven Central reachable? log: $log)"
  fi
  compgen -G "$tmp/*.jar" >/dev/null || die "$name: Maven resolved no jars from $pom (log: $log)"
  touch "$tmp/.complete"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  note "$name: runtime fetched in $(elapsed "$t0") ($(find "$dir" -name '*.jar' | wc -l) jars)"
  echo "$dir"
}

# Fails with one sentence when less than NEED_MIB of memory is available.
# Usage: require_memory NAME NEED_MIB
require_memory() {
  local name=$1 need=$2 avail
  avail=$(awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo 2>/dev/null || echo 0)
  if ((avail > 0 && avail < need)); then
    die "$name: needs about $need MiB of memory to start and only $avail MiB are available; stop something or lower its heap (DOORSTEP_${name^^}_HEAP)"
  fi
}

# "512m" / "1g" / "1536M" -> MiB.
heap_mib() {
  local v=${1,,}
  case $v in
    *g) echo $((${v%g} * 1024)) ;;
    *m) echo "${v%m}" ;;
    *) die "heap size '$1' is not like 512m or 1g" ;;
  esac
}
