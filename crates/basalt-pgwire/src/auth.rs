//! Startup: protocol negotiation, authentication (trust, MD5, SCRAM-SHA-256), the session,
//! ParameterStatus and BackendKeyData.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use basalt_node::{AuthMethod, Leader, NodeError};
use futures::Sink;
use pgwire::api::auth::driver::AuthOutcome;
use pgwire::api::auth::md5pass::{Md5PasswordAuth, hash_md5_password};
use pgwire::api::auth::mechanism::AuthMechanismFactory;
use pgwire::api::auth::sasl::scram::{ScramAuth, gen_salted_password};
use pgwire::api::auth::{
    AuthDriver, AuthSource, LoginInfo, Password, ServerParameterProvider, StartupHandler,
    protocol_negotiation, save_startup_parameters_to_metadata,
};
use pgwire::api::{
    ClientInfo, ConnectionManager, METADATA_APPLICATION_NAME, METADATA_DATABASE, METADATA_USER,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tracing::debug;

use crate::handler::Conn;

/// SCRAM iteration count (Postgres' default).
const SCRAM_ITERATIONS: usize = 4096;

/// ParameterStatus values sent after authentication.
#[derive(Debug)]
pub(crate) struct BasaltParameters;

impl ServerParameterProvider for BasaltParameters {
    fn server_parameters<C>(&self, client: &C) -> Option<HashMap<String, String>>
    where
        C: ClientInfo,
    {
        let meta = client.metadata();
        let user = meta.get(METADATA_USER).cloned().unwrap_or_default();
        let application = meta
            .get(METADATA_APPLICATION_NAME)
            .cloned()
            .unwrap_or_default();
        let fixed = [
            ("server_version", basalt_node::SERVER_VERSION),
            ("server_encoding", "UTF8"),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, MDY"),
            ("IntervalStyle", "postgres"),
            ("TimeZone", "UTC"),
            ("integer_datetimes", "on"),
            ("standard_conforming_strings", "on"),
            ("is_superuser", "on"),
            ("default_transaction_read_only", "off"),
            ("in_hot_standby", "off"),
        ];
        let mut params: HashMap<String, String> = fixed
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        params.insert("session_authorization".into(), user);
        params.insert("application_name".into(), application);
        Some(params)
    }
}

/// Which password hash the auth source hands to pgwire's mechanism.
#[derive(Debug, Clone, Copy)]
enum Hash {
    Md5,
    Scram,
}

/// Passwords from the leader's configuration.
struct LeaderPasswords {
    leader: Arc<Leader>,
    hash: Hash,
}

impl Debug for LeaderPasswords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderPasswords")
            .field("hash", &self.hash)
            .finish()
    }
}

#[async_trait]
impl AuthSource for LeaderPasswords {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let user = login.user().unwrap_or_default();
        // An unknown user (or one without a password) fails like a wrong password, as in
        // Postgres, so the error does not reveal which users exist.
        let Some(password) = self.leader.user_password(user) else {
            return Err(PgWireError::InvalidPassword(user.to_string()));
        };
        Ok(match self.hash {
            Hash::Md5 => {
                let salt = rand::random::<[u8; 4]>().to_vec();
                let hashed = hash_md5_password(user, &password, &salt);
                Password::new(Some(salt), hashed.into_bytes())
            }
            Hash::Scram => {
                let salt = rand::random::<[u8; 16]>().to_vec();
                let salted = gen_salted_password(&password, &salt, SCRAM_ITERATIONS);
                Password::new(Some(salt), salted)
            }
        })
    }
}

/// The startup handler: negotiates, authenticates with the configured method, opens the
/// leader session for (user, database) and only then completes the startup, so an unknown
/// database or role ends the connection with a FATAL error instead of AuthenticationOk.
pub(crate) struct BasaltStartup {
    leader: Arc<Leader>,
    driver: AuthDriver<BasaltParameters>,
    md5: Md5PasswordAuth<LeaderPasswords>,
    scram: ScramAuth,
}

impl BasaltStartup {
    pub(crate) fn new(leader: Arc<Leader>, connections: Arc<ConnectionManager>) -> Self {
        let md5 = Md5PasswordAuth::new(Arc::new(LeaderPasswords {
            leader: leader.clone(),
            hash: Hash::Md5,
        }));
        let mut scram = ScramAuth::new(Arc::new(LeaderPasswords {
            leader: leader.clone(),
            hash: Hash::Scram,
        }));
        scram.set_iterations(SCRAM_ITERATIONS);
        BasaltStartup {
            driver: AuthDriver::new(BasaltParameters).with_connection_manager(connections),
            leader,
            md5,
            scram,
        }
    }

    /// The configured method; a superuser without a password means trust (see LeaderConfig).
    fn method(&self) -> AuthMethod {
        let config = self.leader.config();
        if config.password.is_none() {
            AuthMethod::Trust
        } else {
            config.auth
        }
    }

    /// Authentication succeeded: open the session, then send AuthenticationOk,
    /// ParameterStatus, BackendKeyData and ReadyForQuery.
    async fn finish<C>(
        &self,
        client: &mut C,
        final_message: Option<Authentication>,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let meta = client.metadata();
        let user = meta.get(METADATA_USER).cloned().unwrap_or_default();
        let database = meta
            .get(METADATA_DATABASE)
            .cloned()
            .unwrap_or_else(|| self.leader.config().database.clone());
        let session = self
            .leader
            .session(&user, &database)
            .map_err(|e| fatal_node(&e))?;
        debug!(session = session.id(), %user, %database, "connection authenticated");
        client.session_extensions().insert(Conn::new(session));
        self.driver
            .complete_authentication(client, final_message)
            .await
    }
}

#[async_trait]
impl StartupHandler for BasaltStartup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                if client
                    .metadata()
                    .get(METADATA_USER)
                    .is_none_or(|u| u.is_empty())
                {
                    return Err(fatal(
                        "28000",
                        "no PostgreSQL user name specified in startup packet".into(),
                    ));
                }
                let mechanism = match self.method() {
                    AuthMethod::Trust => return self.finish(client, None).await,
                    AuthMethod::Md5 => self.md5.create(),
                    AuthMethod::ScramSha256 => self.scram.create(),
                };
                let outcome = self.driver.begin_authentication(client, mechanism).await;
                self.proceed(client, outcome).await
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                let outcome = self.driver.advance_authentication(client, message).await;
                self.proceed(client, outcome).await
            }
            _ => Ok(()),
        }
    }
}

impl BasaltStartup {
    async fn proceed<C>(
        &self,
        client: &mut C,
        outcome: PgWireResult<AuthOutcome>,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match outcome {
            Ok(AuthOutcome::InProgress) => Ok(()),
            Ok(AuthOutcome::Authenticated { final_message, .. }) => {
                self.finish(client, final_message).await
            }
            Err(e) => {
                let user = client
                    .metadata()
                    .get(METADATA_USER)
                    .cloned()
                    .unwrap_or_default();
                debug!(%user, error = %e, "authentication failed");
                Err(match e {
                    // SCRAM reports the (usually empty) SCRAM user name; use the startup one.
                    PgWireError::InvalidPassword(_) => fatal(
                        "28P01",
                        format!("password authentication failed for user \"{user}\""),
                    ),
                    other => fatal(other.code(), other.to_string()),
                })
            }
        }
    }
}

fn fatal(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        code.into(),
        message,
    )))
}

fn fatal_node(e: &NodeError) -> PgWireError {
    debug!(sqlstate = e.sqlstate(), error = %e, "connection refused");
    fatal(e.sqlstate(), e.to_string())
}
