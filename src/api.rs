//! The local REST API (axum): submit, query, retract, sight, status, `/healthz`, `/metrics`.

use std::net::SocketAddr;

use axum::Router;
use tokio::sync::watch;

use crate::config::ApiToken;
use crate::node::NodeHandle;

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    pub node: NodeHandle,
    pub tokens: Vec<ApiToken>,
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    Router::new().with_state(state)
}

/// Serves the API on `listener` until `shutdown` turns true.
pub async fn serve(listener: tokio::net::TcpListener, state: ApiState, mut shutdown: watch::Receiver<bool>) {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(?addr, "API listening");
    let app = router(state);
    let stop = async move {
        let _ = shutdown.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
        tracing::error!(error = %e, "API server failed");
    }
}
