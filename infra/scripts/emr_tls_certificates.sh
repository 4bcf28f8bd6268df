#!/usr/bin/env bash
# Make the PEM certificates EMR's in-transit encryption needs and upload them as a zip.
#
#   infra/scripts/emr_tls_certificates.sh <region> <artifacts bucket> [key]
#
# The security configuration (modules/emr) points at s3://<artifacts bucket>/<key>
# (default key: emr/tls/certificates.zip, the `emr.tls_certificates_key` variable). The zip
# holds privateKey.pem, certificateChain.pem and trustedCertificates.pem for the cluster's
# internal DNS names. This makes a self-signed certificate valid for one year; replace it with
# one from your private CA where you have one. Rerun to rotate, then recreate the cluster.
set -euo pipefail

region="${1:?usage: $0 <region> <artifacts bucket> [key]}"
bucket="${2:?usage: $0 <region> <artifacts bucket> [key]}"
key="${3:-emr/tls/certificates.zip}"

domain="*.${region}.compute.internal"
[[ "${region}" == "us-east-1" ]] && domain="*.ec2.internal"

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

openssl req -x509 -newkey rsa:2048 -sha256 -days 365 -nodes \
  -keyout "${work}/privateKey.pem" -out "${work}/certificateChain.pem" \
  -subj "/CN=${domain}" -addext "subjectAltName=DNS:${domain}" 2>/dev/null
cp "${work}/certificateChain.pem" "${work}/trustedCertificates.pem"
(cd "${work}" && python3 -m zipfile -c certificates.zip privateKey.pem certificateChain.pem trustedCertificates.pem)

aws s3 cp "${work}/certificates.zip" "s3://${bucket}/${key}" --region "${region}"
echo "uploaded s3://${bucket}/${key} (certificate for ${domain})"
