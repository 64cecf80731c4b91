#!/usr/bin/env bash
# The HTTP front as clients see it: discovery and JWKS as a relying party reads them (with
# ETag revalidation), health, limits (413, 431), 404 as JSON, security headers, and that the
# server keeps serving after garbage, clients that vanish mid-request, and shuts down cleanly.
. "$(dirname "$0")/lib_server.sh"

jqe() { jq -e "$@" >/dev/null; }
conf=$WORK/gw.conf
write_config "$conf" "max_body = 4K" "trusted_proxies = 127.0.0.1"
start_server "$conf"
issuer=http://127.0.0.1:18190

# discovery
curl -sS -D "$WORK/h1" -o "$WORK/disc.json" "$BASE/.well-known/openid-configuration"
expect "discovery is 200 JSON" bash -c "head -1 '$WORK/h1' | grep -q ' 200' && grep -qi '^content-type: application/json' '$WORK/h1'"
expect "discovery issuer is the configured issuer" jqe --arg i "$issuer" '.issuer==$i' "$WORK/disc.json"
expect "discovery jwks_uri is v1's path" jqe --arg i "$issuer" '.jwks_uri==($i+"/oauth/v2/keys")' "$WORK/disc.json"
expect "discovery endpoints live under the issuer" jqe --arg i "$issuer" '[to_entries[]|select(.key|endswith("_endpoint"))|.value|startswith($i)]|all' "$WORK/disc.json"
expect "discovery says RS256 and public subjects" jqe '(.id_token_signing_alg_values_supported|index("RS256")) and .subject_types_supported==["public"]' "$WORK/disc.json"
expect "discovery is cacheable for 300 s" grep -qi '^cache-control: public, max-age=300' "$WORK/h1"
etag=$(grep -i '^etag:' "$WORK/h1" | sed 's/^[^:]*: //; s/\r$//')
expect "discovery has an ETag" test -n "$etag"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$BASE/.well-known/openid-configuration")
expect "discovery revalidates with 304" test "$code" = 304
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE/.well-known/openid-configuration")
expect "discovery refuses POST (405)" test "$code" = 405
# every advertised endpoint answers (not 404)
for url in $(jq -r 'to_entries[]|select(.key|endswith("_endpoint"))|.value' "$WORK/disc.json"); do
  path=${url#"$issuer"}
  code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE$path")
  expect "advertised $path is routed (got $code)" test "$code" != 404
done

# JWKS, read as a relying party would
curl -sS -D "$WORK/h2" -o "$WORK/jwks.json" "$BASE/oauth/v2/keys"
expect "JWKS is cacheable for 300 s" grep -qi '^cache-control: public, max-age=300' "$WORK/h2"
expect "JWKS has one RS256 signing key" jqe '.keys|length==1 and .[0].kty=="RSA" and .[0].use=="sig" and .[0].alg=="RS256" and (.[0].kid|test("^[0-9]{18}$"))' "$WORK/jwks.json"
expect "JWKS n/e are unpadded base64url with a 2048-bit modulus and e=65537" /usr/bin/python3 - "$WORK/jwks.json" <<'PY'
import base64, json, re, sys
k = json.load(open(sys.argv[1]))["keys"][0]
for f in ("n", "e"):
    assert re.fullmatch(r"[A-Za-z0-9_-]+", k[f]), f
def b64u(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
n = int.from_bytes(b64u(k["n"]), "big"); e = int.from_bytes(b64u(k["e"]), "big")
assert n.bit_length() == 2048 and e == 65537 and n % 2 == 1
assert "d" not in k and "p" not in k
PY
kid=$(jq -r '.keys[0].kid' "$WORK/jwks.json")
"$BIN" keys list --config "$conf" --json >"$WORK/keys.json"
expect "the JWKS kid is the key keys list says signs" jqe --arg k "$kid" 'map(select(.signing))|length==1 and .[0].kid==$k' "$WORK/keys.json"
jetag=$(grep -i '^etag:' "$WORK/h2" | sed 's/^[^:]*: //; s/\r$//')
code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: W/$jetag" "$BASE/oauth/v2/keys")
expect "JWKS revalidates with 304" test "$code" = 304
expect "JWKS varies by Origin (CORS for registered origins only, tests/integration/cors.sh)" grep -qi '^vary: origin' "$WORK/h2"
expect "JWKS gives no CORS to a request without Origin" bash -c "! grep -qi '^access-control-' '$WORK/h2'"

# health
expect "/healthz is 200" bash -c "curl -sf '$BASE/healthz' | jq -e '.status==\"ok\"' >/dev/null"
expect "/readyz is 200 (store answers)" bash -c "curl -sf '$BASE/readyz' | jq -e '.status==\"ready\"' >/dev/null"

# errors
curl -s -D "$WORK/h3" -o "$WORK/404.json" "$BASE/no/such/path?secret=x"
expect "unknown path is 404" bash -c "head -1 '$WORK/h3' | grep -q ' 404'"
expect "...with a JSON error" jqe '.error=="not_found"' "$WORK/404.json"
for h in 'x-content-type-options: nosniff' 'x-frame-options: DENY' 'referrer-policy: no-referrer' "content-security-policy: default-src 'none'"; do
  expect "security header '$h' on a 404" grep -qi "^$h" "$WORK/h3"
  expect "security header '$h' on discovery" grep -qi "^$h" "$WORK/h1"
done
expect "the access log never shows the query" bash -c "$(declare -f log_has); LOG='$LOG'; log_has 'access: GET /no/such/path 404' && ! grep -q 'secret=x' '$LOG'"
expect "the access log uses a syslog prefix" log_has '^<6>access: GET /healthz 200' 
head -c 5000 /dev/zero | tr '\0' a >"$WORK/big"
code=$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$WORK/big" "$BASE/oauth/v2/token")
expect "a body over max_body is 413 (got $code)" test "$code" = 413
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Transfer-Encoding: chunked" --data-binary @"$WORK/big" "$BASE/oauth/v2/token")
expect "a chunked body over max_body is 413 (got $code)" test "$code" = 413
hdrs=()
for i in $(seq 1 70); do hdrs+=(-H "x-h$i: v"); done
code=$(curl -s -o /dev/null -w '%{http_code}' "${hdrs[@]}" "$BASE/oauth/v2/token")
expect "too many headers is 431 (got $code)" test "$code" = 431

# client address behind a trusted proxy
curl -s -o /dev/null -H 'X-Forwarded-For: 203.0.113.7' "$BASE/nothing-here"
expect "X-Forwarded-For from a trusted proxy is the client address" log_has 'access: GET /nothing-here 404 .* 203.0.113.7' 
curl -s -o /dev/null -H 'X-Forwarded-For: 198.51.100.9' -H 'X-Forwarded-For: 127.0.0.1' "$BASE/two-headers"
expect "several X-Forwarded-For headers are one list" log_has 'access: GET /two-headers 404 .* 198.51.100.9'
curl -s -o /dev/null -H 'X-Forwarded-For: 198.51.100.9' "$BASE/healthz?x"
expect "on the loop thread too" log_has 'access: GET /healthz 200 .* 198.51.100.9' 

# hostile clients: garbage bytes, broken HTTP, vanishing clients; then it still serves
expect "garbage and vanishing clients do not hurt the server" /usr/bin/python3 - "$PORT" <<'PY'
import os, socket, sys, time
port = int(sys.argv[1])
def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    return s
payloads = [os.urandom(4096), b"\x00" * 100 + b"\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
            b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /oauth/v2/token HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + os.urandom(64),
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: " + b"\xff" * 10 + b"\r\n\r\n"]
for p in payloads:
    s = conn()
    try:
        s.sendall(p)
        s.recv(4096)
    except OSError:
        pass
    s.close()
# clients that send a request for a worker and leave before the answer
for _ in range(100):
    s = conn()
    s.sendall(b"POST /oauth/v2/token HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    s.close()
# half a request, then gone
for _ in range(20):
    s = conn()
    s.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
    s.close()
# pipelined requests on one connection all get answers
s = conn()
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 3 + b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
assert data.count(b"HTTP/1.1 200") == 3 and data.count(b"HTTP/1.1 404") == 1, data[:400]
time.sleep(0.3)
s = conn()
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
assert b" 200 " in s.recv(4096)
PY
expect "still serving discovery after the abuse" bash -c "curl -sf '$BASE/.well-known/openid-configuration' | jq -e .issuer >/dev/null"

# many concurrent requests through the worker pool
expect "200 concurrent worker requests all answered" bash -c "seq 1 200 | xargs -P 32 -I{} curl -s -o /dev/null -w '%{http_code}\n' '$BASE/readyz' | sort | uniq -c | grep -qE '^ *200 200$'"

# HTTP/2 is off unless asked for (h2o 2.2.5 predates the rapid-reset fixes)
v=$(curl -s -o /dev/null -w '%{http_version}' --http2-prior-knowledge "$BASE/healthz" || true)
expect "HTTP/2 prior knowledge is refused by default (got '$v')" test "$v" != 2
v=$(curl -s -o /dev/null -w '%{http_version}' --http2 "$BASE/healthz")
expect "an h2c upgrade stays on HTTP/1.1 by default" test "$v" = 1.1

# clean shutdown
expect "SIGTERM exits 0" stop_server
expect "the log says it stopped" grep -q '^<6>serve: stopped' "$LOG"
expect "no error lines in the log" bash -c "! grep -q '^<3>' '$LOG'"

# with http2 = on: prior knowledge and upgrade both speak HTTP/2, worker answers included
write_config "$conf" "http2 = on"
start_server "$conf"
v=$(curl -s -o "$WORK/h2.json" -w '%{http_version} %{http_code}' --http2-prior-knowledge "$BASE/oauth/v2/keys")
expect "http2 = on: JWKS over HTTP/2 (got '$v')" bash -c "[ '$v' = '2 200' ] && jq -e '.keys|length==1' '$WORK/h2.json' >/dev/null"
v=$(curl -s -o "$WORK/h2.json" -w '%{http_version} %{http_code}' --http2-prior-knowledge "$BASE/no/such")
expect "http2 = on: a worker answer over HTTP/2 (got '$v')" bash -c "[ '$v' = '2 404' ] && jq -e '.error==\"not_found\"' '$WORK/h2.json' >/dev/null"
v=$(seq 1 20 | xargs -P 20 -I{} curl -s -o /dev/null -w '%{http_code}\n' --http2-prior-knowledge "$BASE/readyz" | sort | uniq -c | tr -s ' ')
expect "http2 = on: concurrent worker requests (got '$v')" test "$v" = " 20 200"
expect "http2 = on: streams reset before the worker answers do not hurt the server" /usr/bin/python3 - "$PORT" <<'PY'
import socket, struct, sys
port = int(sys.argv[1])
def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload
def lit(name, value):  # HPACK literal header field without indexing, new name
    n, v = name.encode(), value.encode()
    return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v
def headers(path):
    return (lit(":method", "GET") + lit(":scheme", "http") + lit(":authority", "x") + lit(":path", path))
for conn in range(5):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0)
    for i in range(10):
        sid = 1 + 2 * i
        out += frame(1, 0x5, sid, headers("/readyz")) + frame(3, 0, sid, struct.pack(">I", 8))
    s.sendall(out)
    if conn % 2:
        s.close()  # and the whole connection goes away with answers pending
        continue
    # one more stream that must still be answered
    s.sendall(frame(1, 0x5, 21, headers("/healthz")))
    buf = b""
    got = False
    while not got:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
        # find a HEADERS frame (type 1) on stream 21
        i = 0
        while i + 9 <= len(buf):
            ln = int.from_bytes(buf[i:i+3], "big"); ft = buf[i+3]; sid = int.from_bytes(buf[i+5:i+9], "big") & 0x7fffffff
            if ft == 1 and sid == 21:
                got = True
            i += 9 + ln
    s.close()
    assert got, "no answer on stream 21"
PY
v=$(curl -s -o /dev/null -w '%{http_version} %{http_code}' --http2-prior-knowledge "$BASE/healthz")
expect "http2 = on: still serving after resets (got '$v')" test "$v" = "2 200"
expect "SIGTERM exits 0 (HTTP/2)" stop_server

finish
