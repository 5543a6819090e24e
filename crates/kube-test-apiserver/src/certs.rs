//! The cluster CA: created once per directory (kept in `ca.crt` / `ca.key`), it signs the serving certificate
//! and the client certificates of approved CertificateSigningRequests, and verifies client certificates.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SigningKey};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateSigningRequestDer, PrivateKeyDer};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate, X509CertificationRequest};
use yasna::Tag;
use yasna::models::{GeneralizedTime, ObjectIdentifier, UTCTime};

use super::Error;
use super::identity::Identity;

pub struct Ca {
    pub cert_pem: String,
    pub cert_der: CertificateDer<'static>,
    /// The CA's subject exactly as encoded, to be the issuer of what it signs (chains match names bytewise).
    subject_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

impl Ca {
    /// Reuses `dir/ca.crt` and `dir/ca.key` when both exist (so certificates issued before a restart still
    /// work), else creates a new CA and writes them.
    pub fn load_or_create(dir: &Path) -> Result<Ca, Error> {
        let (crt, key) = (dir.join("ca.crt"), dir.join("ca.key"));
        let (cert_pem, key_pair) = if crt.exists() && key.exists() {
            let cert_pem = std::fs::read_to_string(&crt).map_err(io_err(&crt))?;
            let key_pem = std::fs::read_to_string(&key).map_err(io_err(&key))?;
            (cert_pem, KeyPair::from_pem(&key_pem)?)
        } else {
            let key_pair = KeyPair::generate()?;
            let mut params = CertificateParams::default();
            params.distinguished_name.push(DnType::CommonName, "kube-test-apiserver-ca");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
            let now = OffsetDateTime::now_utc();
            params.not_before = now - time::Duration::hours(1);
            params.not_after = now + time::Duration::days(3650);
            let cert_pem = params.self_signed(&key_pair)?.pem();
            std::fs::write(&crt, &cert_pem).map_err(io_err(&crt))?;
            write_private(&key, &key_pair.serialize_pem())?;
            (cert_pem, key_pair)
        };
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| Error::Pem(format!("{}: {e}", crt.display())))?;
        let subject_der = X509Certificate::from_der(&cert_der).map_err(|e| Error::Pem(format!("{}: {e}", crt.display())))?.1.subject().as_raw().to_vec();
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key_pair)?;
        Ok(Ca { cert_pem, cert_der, subject_der, issuer })
    }

    /// A fresh serving certificate for 127.0.0.1, ::1, localhost and the listening address.
    pub fn serving_cert(&self, listen_ip: IpAddr) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), Error> {
        let key = KeyPair::generate()?;
        let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
        if !listen_ip.is_loopback() && !listen_ip.is_unspecified() {
            names.push(listen_ip.to_string());
        }
        let mut params = CertificateParams::new(names)?;
        params.distinguished_name.push(DnType::CommonName, "kube-apiserver");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(365);
        let cert = params.signed_by(&key, &self.issuer)?;
        let key = PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| Error::Pem(e.to_string()))?;
        Ok((cert.der().clone(), key))
    }

    /// Signs a PEM CSR as a client certificate (the kube-apiserver-client signer): the CSR's subject as is
    /// (CN = user, every O = a group), backdated 5 minutes like Kubernetes' signer. Returns the PEM.
    pub fn sign_client_csr(&self, csr_pem: &[u8], lifetime: Duration) -> Result<String, String> {
        let csr = parse_csr(csr_pem)?;
        let (_, parsed) = X509CertificationRequest::from_der(&csr).map_err(|e| e.to_string())?;
        let info = &parsed.certification_request_info;
        let key = self.issuer.key();
        let alg = signature_algorithm(key)?;
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).map_err(|e| e.to_string())?;
        let (not_before, not_after) = (now - time::Duration::minutes(5), now + lifetime);
        let serial: [u8; 16] = rand::random();
        let tbs = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_tagged(Tag::context(0), |w| w.write_u8(2));
                w.next().write_bigint_bytes(&serial, true);
                alg.write(w.next());
                w.next().write_der(&self.subject_der);
                w.next().write_sequence(|w| {
                    write_time(w.next(), not_before);
                    write_time(w.next(), not_after);
                });
                w.next().write_der(info.subject.as_raw());
                w.next().write_der(info.subject_pki.raw);
                w.next().write_tagged(Tag::context(3), |w| {
                    w.write_sequence(|w| {
                        // keyUsage (critical): digitalSignature, keyEncipherment
                        extension(w.next(), &[2, 5, 29, 15], true, &yasna::construct_der(|w| w.write_bitvec_bytes(&[0xa0], 3)));
                        // extKeyUsage: clientAuth
                        let eku = yasna::construct_der(|w| w.write_sequence(|w| w.next().write_oid(&oid(&[1, 3, 6, 1, 5, 5, 7, 3, 2]))));
                        extension(w.next(), &[2, 5, 29, 37], false, &eku);
                        // basicConstraints (critical): not a CA
                        extension(w.next(), &[2, 5, 29, 19], true, &yasna::construct_der(|w| w.write_sequence(|_| ())));
                    })
                });
            })
        });
        let signature = key.sign(&tbs).map_err(|e| e.to_string())?;
        let der = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_der(&tbs);
                alg.write(w.next());
                w.next().write_bitvec_bytes(&signature, signature.len() * 8);
            })
        });
        Ok(pem("CERTIFICATE", &der))
    }
}

/// Decodes and checks a PEM CSR (its signature proves the requester holds the key). Returns the DER.
pub fn parse_csr(pem: &[u8]) -> Result<Vec<u8>, String> {
    let der = CertificateSigningRequestDer::from_pem_slice(pem).map_err(|e| format!("cannot read a PEM CSR: {e}"))?;
    let (_, csr) = X509CertificationRequest::from_der(der.as_ref()).map_err(|e| format!("invalid CSR: {e}"))?;
    csr.verify_signature().map_err(|e| format!("the CSR's signature does not verify: {e}"))?;
    Ok(der.as_ref().to_vec())
}

/// CN is the user name and each O a group, as Kubernetes' x509 authenticator reads client certificates.
pub fn identity_from_cert(der: &[u8]) -> Option<Identity> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let subject = cert.subject();
    let user = subject.iter_common_name().next()?.as_str().ok()?.to_string();
    if user.is_empty() {
        return None;
    }
    let groups: Vec<String> = subject.iter_organization().filter_map(|o| o.as_str().ok()).map(str::to_string).collect();
    Some(Identity::new(user, groups))
}

struct Alg {
    oid: &'static [u64],
    null_params: bool,
}

impl Alg {
    fn write(&self, w: yasna::DERWriter) {
        w.write_sequence(|w| {
            w.next().write_oid(&oid(self.oid));
            if self.null_params {
                w.next().write_null();
            }
        })
    }
}

fn signature_algorithm(key: &KeyPair) -> Result<Alg, String> {
    let alg = key.algorithm();
    if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
        Ok(Alg { oid: &[1, 2, 840, 10045, 4, 3, 2], null_params: false })
    } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
        Ok(Alg { oid: &[1, 2, 840, 10045, 4, 3, 3], null_params: false })
    } else if alg == &rcgen::PKCS_ED25519 {
        Ok(Alg { oid: &[1, 3, 101, 112], null_params: false })
    } else if alg == &rcgen::PKCS_RSA_SHA256 {
        Ok(Alg { oid: &[1, 2, 840, 113549, 1, 1, 11], null_params: true })
    } else {
        Err("the CA key's algorithm is not supported for signing CSRs".into())
    }
}

fn oid(components: &[u64]) -> ObjectIdentifier {
    ObjectIdentifier::from_slice(components)
}

fn extension(w: yasna::DERWriter, id: &[u64], critical: bool, value: &[u8]) {
    w.write_sequence(|w| {
        w.next().write_oid(&oid(id));
        if critical {
            w.next().write_bool(true);
        }
        w.next().write_bytes(value);
    })
}

/// RFC 5280: UTCTime until 2049, GeneralizedTime after.
fn write_time(w: yasna::DERWriter, t: OffsetDateTime) {
    if t.year() < 2050 {
        w.write_utctime(&UTCTime::from_datetime(t));
    } else {
        w.write_generalized_time(&GeneralizedTime::from_datetime(t));
    }
}

pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Writes a file only its owner can read (keys, tokens).
pub fn write_private(path: &Path, contents: &str) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(io_err(path))?;
    file.write_all(contents.as_bytes()).map_err(io_err(path))
}
