#!/usr/bin/env bash
# Makes the development PKI of caregate: a dev CA, a server certificate for localhost, client
# certificates that name provider organisations by ODS code, the key pair that signs dev tokens,
# the Ed25519 key pair that signs the audit chain's anchors (caregate serve --audit-key), the keys that
# key each recipient's pseudonyms in pseudonymised exports (caregate serve --export-keys), and the dev
# CA's certificate revocation list (CRL). For development and tests only, never for production.
# Running it again adds what is missing and keeps what exists (except that a new CA re-issues the
# certificates it signs and forgets what the old one revoked); the CRL is written anew on every run,
# so that it is always current (30 days) and lists every certificate revoked so far.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: certs/make-dev-certs.sh [--out DIR] [--client ODS ...] [--revoke ODS ...]

  --out DIR           where to write the files (default: certs/dev in the repository)
  --client ODS ...    ODS codes to issue client certificates for (repeatable; default:
                      A81001 (GP practice), RX1 (acute trust), 8JK23 (adult social care provider), QZZ (the ICS itself))
  --revoke ODS ...    revoke the client certificates DIR/client-<ODS>.crt (repeatable); crl.pem then lists them

Files: ca.crt ca.key server.crt server.key client-<ODS>.crt client-<ODS>.key
       token-signing.key token-signing.pub audit-signing.key audit-signing.pub
       export-keys.json (a random pseudonymisation key for each client organisation)
       crl.pem (the dev CA's CRL, for `caregate serve --crl`; empty until something is revoked)
       ca-db/ (the dev CA's `openssl ca` database: what it has revoked)
EOF
}

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out="$script_dir/dev"
clients=()
revocations=()

while (($#)); do
    case $1 in
    --out)
        [[ $# -ge 2 ]] || { echo "make-dev-certs: --out needs a directory" >&2; exit 2; }
        out=$2
        shift 2
        ;;
    --client)
        shift
        [[ $# -ge 1 && $1 != --* ]] || { echo "make-dev-certs: --client needs an ODS code" >&2; exit 2; }
        while (($#)) && [[ $1 != --* ]]; do
            clients+=("$1")
            shift
        done
        ;;
    --revoke)
        shift
        [[ $# -ge 1 && $1 != --* ]] || { echo "make-dev-certs: --revoke needs an ODS code" >&2; exit 2; }
        while (($#)) && [[ $1 != --* ]]; do
            revocations+=("$1")
            shift
        done
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "make-dev-certs: unknown argument '$1'" >&2
        usage >&2
        exit 2
        ;;
    esac
done

if ((${#clients[@]} == 0)); then
    clients=(A81001 RX1 8JK23 QZZ)
fi
for ods in "${clients[@]}" "${revocations[@]}"; do
    # ODS codes are 3 to 10 upper-case letters and digits; anything else would end up in a subject.
    [[ $ods =~ ^[A-Z0-9]{3,10}$ ]] || { echo "make-dev-certs: '$ods' is not an ODS code" >&2; exit 2; }
done

command -v openssl >/dev/null || { echo "make-dev-certs: openssl not found" >&2; exit 1; }

mkdir -p "$out"
out=$(cd "$out" && pwd)
umask 077 # private keys readable by their owner only

organisation_name() {
    case $1 in
    A81001) echo "Caregate Dev GP Practice" ;;
    RX1) echo "Caregate Dev Acute NHS Trust" ;;
    8JK23) echo "Caregate Dev Adult Social Care Provider" ;;
    QZZ) echo "Caregate Dev Integrated Care Board" ;;
    *) echo "Caregate Dev Organisation $1" ;;
    esac
}

new_ec_key() { openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
random_serial() { echo "0x$(openssl rand -hex 16)"; }

# Signs a certificate for key $1 with subject $2 into $3, with the X.509v3 extensions $4.
issue() {
    local key=$1 subject=$2 cert=$3 extensions=$4
    openssl req -new -key "$key" -subj "$subject" |
        openssl x509 -req -CA "$out/ca.crt" -CAkey "$out/ca.key" -set_serial "$(random_serial)" \
            -days 825 -sha256 -extfile <(printf '%s\n' "$extensions") -out "$cert" 2>/dev/null
    chmod 644 "$cert"
}

made_ca=false
if [[ ! -f $out/ca.crt || ! -f $out/ca.key ]]; then
    new_ec_key "$out/ca.key"
    openssl req -x509 -new -key "$out/ca.key" -sha256 -days 3650 \
        -subj "/O=caregate development/CN=caregate development CA" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" -out "$out/ca.crt"
    chmod 644 "$out/ca.crt"
    made_ca=true
    echo "made $out/ca.crt, $out/ca.key (development CA)"
fi

# A certificate pair is (re)made when either file is missing, or when the CA that signs it is new.
needs() { $made_ca || [[ ! -f $1.crt || ! -f $1.key ]]; }

if needs "$out/server"; then
    new_ec_key "$out/server.key"
    issue "$out/server.key" "/O=caregate development/CN=localhost" "$out/server.crt" \
        "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid"
    echo "made $out/server.crt, $out/server.key (server: localhost, 127.0.0.1, ::1)"
fi

for ods in "${clients[@]}"; do
    base="$out/client-$ods"
    if needs "$base"; then
        name=$(organisation_name "$ods")
        new_ec_key "$base.key"
        issue "$base.key" "/O=$name/CN=$ods" "$base.crt" \
            "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid"
        echo "made $base.crt, $base.key (client: $ods, $name)"
    fi
done

if [[ ! -f $out/token-signing.key || ! -f $out/token-signing.pub ]]; then
    openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$out/token-signing.key"
    openssl pkey -in "$out/token-signing.key" -pubout -out "$out/token-signing.pub"
    chmod 644 "$out/token-signing.pub"
    echo "made $out/token-signing.key, $out/token-signing.pub (RS256 dev token signing)"
fi

if [[ ! -f $out/audit-signing.key || ! -f $out/audit-signing.pub ]]; then
    # Ed25519: whoever verifies the anchors needs only the public key, and cannot make one.
    openssl genpkey -quiet -algorithm ed25519 -out "$out/audit-signing.key"
    openssl pkey -in "$out/audit-signing.key" -pubout -out "$out/audit-signing.pub"
    chmod 644 "$out/audit-signing.pub"
    echo "made $out/audit-signing.key, $out/audit-signing.pub (Ed25519 dev audit anchor signing)"
fi

# Pseudonymisation keys, one for each client organisation (a recipient of pseudonymised exports):
# random, so dev pseudonyms differ from every other machine's. Kept once made, as the signing keys are.
if [[ ! -f $out/export-keys.json ]]; then
    {
        echo "{"
        first=1
        for ods in "${clients[@]}"; do
            ((first)) || echo ","
            first=0
            printf '  "%s": "%s"' "$ods" "$(openssl rand -hex 32)"
        done
        echo
        echo "}"
    } >"$out/export-keys.json"
    chmod 600 "$out/export-keys.json"
    echo "made $out/export-keys.json (dev pseudonymisation keys: ${clients[*]})"
fi

# The dev CA's `openssl ca` database: what it has revoked. A new CA starts a new one, since the old
# CA's revocations name certificates that no longer verify anyway.
ca_db="$out/ca-db"
if $made_ca; then
    rm -rf "$ca_db"
fi
mkdir -p "$ca_db"
[[ -f $ca_db/index.txt ]] || : >"$ca_db/index.txt"
[[ -f $ca_db/crlnumber ]] || echo 1000 >"$ca_db/crlnumber"
cat >"$ca_db/openssl.cnf" <<EOF
[ca]
default_ca = dev_ca

[dev_ca]
database = $ca_db/index.txt
crlnumber = $ca_db/crlnumber
certificate = $out/ca.crt
private_key = $out/ca.key
default_md = sha256
# A month: long enough for development, short enough that a forgotten CRL is noticed (caregate serve
# refuses an expired one). Every run of make-dev-certs.sh writes a fresh one.
default_crl_days = 30
unique_subject = no
crl_extensions = crl_extensions

[crl_extensions]
authorityKeyIdentifier = keyid:always
EOF

for ods in "${revocations[@]}"; do
    cert="$out/client-$ods.crt"
    [[ -f $cert ]] || { echo "make-dev-certs: cannot revoke $ods: $cert does not exist" >&2; exit 1; }
    serial=$(openssl x509 -in "$cert" -noout -serial)
    serial=${serial#serial=}
    # Revoking twice is not an error: the certificate is revoked, as asked.
    if awk -F'\t' -v serial="$serial" '$1 == "R" && $4 == serial { found = 1 } END { exit !found }' \
        "$ca_db/index.txt"; then
        echo "$cert was already revoked (serial $serial)"
        continue
    fi
    openssl ca -config "$ca_db/openssl.cnf" -revoke "$cert" 2>/dev/null ||
        { echo "make-dev-certs: openssl ca could not revoke $cert" >&2; exit 1; }
    echo "revoked $cert (serial $serial)"
done

openssl ca -config "$ca_db/openssl.cnf" -gencrl -out "$out/crl.pem" 2>/dev/null ||
    { echo "make-dev-certs: openssl ca could not write the CRL" >&2; exit 1; }
chmod 644 "$out/crl.pem"
revoked=$(awk -F'\t' '$1 == "R"' "$ca_db/index.txt" | wc -l)
echo "wrote $out/crl.pem (the dev CA's CRL, valid 30 days; $revoked revoked)"
