//! Node identities and the federation PKI: ed25519 node keys, the CA, node TLS certificates.
