#!/usr/bin/env bash
# Makes a self-signed CA and a serving certificate for regard-webhook with openssl,
# for local runs and directory mode (--tls-cert-file/--tls-key-file). The cluster deploy
# (deploy/deployment.yaml) needs none of this: regard-webhook --cert-secret makes its own.
#
#   deploy/gen-certs.sh [OUT_DIR] [SERVICE] [NAMESPACE]
#
# Writes OUT_DIR/{ca.crt,ca.key,tls.crt,tls.key}. The serving certificate is valid for
# SERVICE.NAMESPACE.svc (what the API server dials), SERVICE.NAMESPACE.svc.cluster.local,
# localhost and 127.0.0.1. Prints the base64 CA bundle for the
# ValidatingWebhookConfiguration's caBundle.
set -euo pipefail

out="${1:-certs}"
service="${2:-regard-webhook}"
namespace="${3:-regard-system}"
days="${DAYS:-365}"

mkdir -p "$out"
umask 077

openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -keyout "$out/ca.key" -out "$out/ca.crt" -days "$((days * 10))" \
  -subj "/O=regard/CN=regard-webhook-ca" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -keyout "$out/tls.key" -out "$out/tls.csr" \
  -subj "/O=regard/CN=${service}.${namespace}.svc" 2>/dev/null

cat > "$out/tls.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:${service}.${namespace}.svc,DNS:${service}.${namespace}.svc.cluster.local,DNS:localhost,IP:127.0.0.1
EXT

openssl x509 -req -in "$out/tls.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
  -CAcreateserial -out "$out/tls.crt" -days "$days" -extfile "$out/tls.ext" 2>/dev/null

rm -f "$out/tls.csr" "$out/tls.ext" "$out/ca.srl"
chmod 644 "$out/ca.crt" "$out/tls.crt"

echo "wrote $out/ca.crt $out/ca.key $out/tls.crt $out/tls.key" >&2
echo "caBundle: $(base64 -w0 < "$out/ca.crt")"
