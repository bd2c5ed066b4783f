//! `wick serve`: the labeling server.
use super::ModelArgs;
use anyhow::{Context, Result};
use clap::Args;
use rand::RngCore;
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use wick::jobs::JobRunner;
use wick::store::users::{self, Role};
use wick::store::{Actor, Store};
use wick::tasks::worker::ModelHandle;
use wick::web::{self, AppState, ServeOptions};

#[derive(Args)]
pub struct ServeArgs {
    /// The SQLite database (created and migrated if needed).
    #[arg(long, env = "WICK_DB", default_value = "wick.db")]
    db: PathBuf,
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, env = "WICK_ADDR", default_value = "127.0.0.1:8080")]
    addr: String,
    #[command(flatten)]
    model: ModelArgs,
    /// Serve without loading a model: pre-labeling is then refused.
    #[arg(long, env = "WICK_NO_MODEL")]
    no_model: bool,
    /// Mark the session cookie Secure (set this when Wick is served over HTTPS).
    #[arg(long, env = "WICK_SECURE_COOKIES")]
    secure_cookies: bool,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "WICK_HTTP_WORKERS")]
    http_workers: Option<usize>,
}

pub fn run(args: ServeArgs) -> Result<ExitCode> {
    let store = Store::open(&args.db).with_context(|| format!("opening {}", args.db.display()))?;
    ensure_admin(&store)?;
    let model = if args.no_model {
        None
    } else {
        let m = args.model.clone();
        Some(ModelHandle::spawn(move || m.load())?)
    };
    let jobs = JobRunner::spawn(store.clone(), model.clone())?;
    let listener =
        TcpListener::bind(&args.addr).with_context(|| format!("listening on {}", args.addr))?;
    let addr = listener.local_addr()?;
    println!("Wick is listening on http://{addr}/");
    std::io::stdout().flush()?;
    let state = AppState::new(store, jobs, model);
    let opts = ServeOptions {
        secure_cookies: args.secure_cookies,
        workers: args.http_workers,
    };
    actix_web::rt::System::new().block_on(web::serve(state, listener, opts))?;
    Ok(ExitCode::SUCCESS)
}

/// On a database with no users, creates `admin` with `WICK_ADMIN_PASSWORD` or a random
/// password printed once.
fn ensure_admin(store: &Store) -> Result<()> {
    if store.read(users::count)? > 0 {
        return Ok(());
    }
    let (password, generated) = match std::env::var("WICK_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => (p, false),
        _ => {
            let mut b = [0u8; 12];
            rand::rng().fill_bytes(&mut b);
            (
                b.iter().map(|x| format!("{x:02x}")).collect::<String>(),
                true,
            )
        }
    };
    store.write(|tx| users::create(tx, &Actor::system(), "admin", Role::Admin, &password))?;
    if generated {
        println!("Created user admin with password {password} (shown once; set WICK_ADMIN_PASSWORD to choose it)");
    } else {
        println!("Created user admin with the password from WICK_ADMIN_PASSWORD");
    }
    Ok(())
}
