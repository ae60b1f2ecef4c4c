//! Name resolution with a typed failure: the HTTP clients resolve through
//! [`SystemResolver`], so a name that does not resolve reaches the classifier
//! as a [`ResolveError`] rather than as text inside a connector's error.

use std::net::SocketAddr;

/// A host name could not be resolved.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve {host}: {source}")]
pub struct ResolveError {
    /// The name asked for.
    pub host: String,
    /// The system resolver's error (getaddrinfo's, as `std` reports it).
    #[source]
    pub source: std::io::Error,
}

/// Resolves `host:port` with the system resolver; a failure is a [`ResolveError`].
pub async fn lookup(host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
    match tokio::net::lookup_host((host, port)).await {
        Ok(addrs) => Ok(addrs.collect()),
        Err(source) => Err(ResolveError {
            host: host.to_string(),
            source,
        }),
    }
}

/// reqwest's resolver, backed by [`lookup`].
#[derive(Debug, Default)]
pub struct SystemResolver;

impl reqwest::dns::Resolve for SystemResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = lookup(&host, 0).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}
