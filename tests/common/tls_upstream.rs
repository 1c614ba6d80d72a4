//! A real HTTPS upstream on 127.0.0.1, with certificates made for the test: a private CA
//! (rcgen) signs leaf certificates for 127.0.0.1 and localhost, valid for as long as a test asks
//! or already expired, and a leaf may also sign itself. The upstream serves an axum router over
//! tokio-rustls, so checks meet a real TLS handshake, and it counts the handshakes that
//! completed, which tells a test how many connections a client opened.
//!
//! The CA's PEM is written to a file for `ca_file`. Nothing here touches the network beyond
//! loopback.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::any;
use chrono::{DateTime, TimeDelta, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::server::TlsStream;

/// A private certificate authority that exists only for one test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate for 127.0.0.1 and localhost, with its key.
pub struct Leaf {
    certificate: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    /// When it stops being valid, to the second (X.509 keeps no fractions).
    pub not_after: DateTime<Utc>,
}

impl TestCa {
    /// Makes a CA whose certificate is named `name`.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names to check");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("ring generates a key");
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, key).expect("rcgen signs the CA"),
        }
    }

    /// The CA's certificate in PEM form.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// Writes the CA's certificate to `dir/file_name` and returns the path, for `ca_file`.
    pub fn write_pem(&self, dir: &Path, file_name: &str) -> PathBuf {
        let path = dir.join(file_name);
        std::fs::write(&path, self.pem()).expect("write the CA file");
        path
    }

    /// A leaf this CA signed, valid from a day ago until `valid_for` from now.
    pub fn leaf(&self, valid_for: TimeDelta) -> Leaf {
        let now = Utc::now();
        self.leaf_between(now - TimeDelta::days(1), now + valid_for)
    }

    /// A leaf this CA signed that expired `ago` (it was valid for 30 days before that).
    pub fn expired_leaf(&self, ago: TimeDelta) -> Leaf {
        let not_after = Utc::now() - ago;
        self.leaf_between(not_after - TimeDelta::days(30), not_after)
    }

    fn leaf_between(&self, not_before: DateTime<Utc>, not_after: DateTime<Utc>) -> Leaf {
        let (params, key, not_after) = leaf_params(not_before, not_after);
        let certificate = params
            .signed_by(&key, &self.issuer)
            .expect("rcgen signs the leaf");
        Leaf::new(&certificate, &key, not_after)
    }
}

impl Leaf {
    /// A leaf that signed itself (no CA at all), valid for `valid_for` from now.
    pub fn self_signed(valid_for: TimeDelta) -> Leaf {
        let now = Utc::now();
        let (params, key, not_after) = leaf_params(now - TimeDelta::days(1), now + valid_for);
        let certificate = params.self_signed(&key).expect("rcgen signs the leaf");
        Leaf::new(&certificate, &key, not_after)
    }

    fn new(certificate: &rcgen::Certificate, key: &KeyPair, not_after: DateTime<Utc>) -> Leaf {
        Leaf {
            certificate: certificate.der().clone(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
            not_after,
        }
    }
}

/// The parameters and key of a server certificate for 127.0.0.1 and localhost, and its notAfter
/// as the certificate will carry it (whole seconds).
fn leaf_params(
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> (CertificateParams, KeyPair, DateTime<Utc>) {
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])
        .expect("valid names");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    // rcgen speaks the `time` crate; adding whole seconds to its `date_time_ymd` epoch saves a
    // dependency on `time` for one conversion.
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + since_epoch(not_before);
    params.not_after = epoch + since_epoch(not_after);
    let not_after = DateTime::from_timestamp(not_after.timestamp(), 0).expect("in range");
    (
        params,
        KeyPair::generate().expect("ring generates a key"),
        not_after,
    )
}

/// Whole seconds from the UNIX epoch to `time`.
fn since_epoch(time: DateTime<Utc>) -> Duration {
    Duration::from_secs(u64::try_from(time.timestamp()).expect("test dates are after 1970"))
}

/// The upstream; dropping it stops the server.
pub struct TlsUpstream {
    addr: SocketAddr,
    /// TLS handshakes that completed: one per connection a client opened and kept.
    handshakes: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for TlsUpstream {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Accepted TLS streams, handed over by the task that runs the handshakes; axum's `serve`
/// takes connections from here.
struct TlsListener {
    incoming: mpsc::Receiver<(TlsStream<tokio::net::TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(connection) => connection,
            // The handshake task only ends when the upstream is dropped, which aborts this
            // server too; until then, wait.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

impl TlsUpstream {
    /// Serves 200 "ok" on every path with `leaf`.
    pub async fn start(leaf: &Leaf) -> TlsUpstream {
        Self::serve(leaf, Router::new().fallback(any(|| async { "ok" }))).await
    }

    /// Serves `app` with `leaf`.
    pub async fn serve(leaf: &Leaf, app: Router) -> TlsUpstream {
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.certificate.clone()],
                PrivateKeyDer::Pkcs8(leaf.key.clone_key()),
            )
            .expect("the leaf and its key match");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let handshakes = Arc::new(AtomicUsize::new(0));
        let (sender, incoming) = mpsc::channel(16);
        // Handshakes run in their own tasks, so one client that stalls mid-handshake does not
        // hold up the next.
        let accepting = {
            let handshakes = handshakes.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((stream, peer)) = tcp.accept().await else {
                        continue;
                    };
                    let (acceptor, handshakes, sender) =
                        (acceptor.clone(), handshakes.clone(), sender.clone());
                    tokio::spawn(async move {
                        let handshake =
                            tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                        // A failed handshake is the client refusing the certificate: the test
                        // sees that in the check's result.
                        if let Ok(Ok(tls)) = handshake.await {
                            handshakes.fetch_add(1, Ordering::SeqCst);
                            let _ = sender.send((tls, peer)).await;
                        }
                    });
                }
            })
        };
        let server = tokio::spawn(async move {
            axum::serve(TlsListener { incoming, addr }, app)
                .await
                .unwrap();
        });
        TlsUpstream {
            addr,
            handshakes,
            tasks: vec![accepting, server],
        }
    }

    /// The https URL of `path` on this upstream, by IP address.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// The https URL of `path` on this upstream, by the name `localhost`.
    pub fn localhost_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    /// TLS handshakes completed so far: the connections clients opened and kept.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}
