//! `ledger serve --config FILE` (or `LEDGER_CONFIG`): a TOML file whose keys
//! are the long flags of `ledger serve` (`listen = "0.0.0.0:8080"`,
//! `max-connections = 2048`, `trusted-proxy = ["10.0.0.0/8"]`).
//!
//! Precedence, highest first: a flag on the command line, its environment
//! variable, the config file, the built-in default. A key that is no flag of
//! `ledger serve` is an error naming it, as is a value of the wrong kind.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::CommandFactory;

/// Where the subcommand stands: the first argument that is neither an
/// option nor the value of a global option that takes one (so that `ledger
/// get domain serve` is not `serve`).
fn command_position(args: &[OsString]) -> Option<usize> {
    const TAKES_VALUE: [&str; 7] = ["-u", "--url", "-c", "--credentials", "--token", "--ca-cert", "--fields"];
    let mut i = 1;
    while i < args.len() {
        let arg = args[i].to_string_lossy();
        if !arg.starts_with('-') {
            return Some(i);
        }
        i += if TAKES_VALUE.contains(&arg.as_ref()) { 2 } else { 1 };
    }
    None
}

/// What the config file added to the arguments: its path and the keys.
#[derive(Debug, Default)]
pub struct Injected {
    pub path: PathBuf,
    pub keys: Vec<String>,
}

impl Injected {
    /// For an error about arguments: which of them came from the file.
    pub fn note_for(&self, error: &str) -> Option<String> {
        let keys: Vec<&str> =
            self.keys.iter().map(String::as_str).filter(|k| error.contains(&format!("--{k}"))).collect();
        (!keys.is_empty()).then(|| format!("note: {} set in the config file {}", keys.join(", "), self.path.display()))
    }
}

/// `args` (the process's arguments) with the config file's settings added as
/// flags after `serve`, where neither the command line nor the environment
/// already sets them, and what was added. Other commands' arguments are
/// returned unchanged.
pub fn args_with_config(args: Vec<OsString>) -> anyhow::Result<(Vec<OsString>, Injected)> {
    let Some(serve_at) = command_position(&args).filter(|&i| args[i] == "serve") else {
        return Ok((args, Injected::default()));
    };
    let after: Vec<String> = args[serve_at + 1..].iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let given = |long: &str| after.iter().any(|a| a == &format!("--{long}") || a.starts_with(&format!("--{long}=")));
    let from_flag = after.iter().enumerate().find_map(|(i, a)| match a.strip_prefix("--config") {
        Some("") => after.get(i + 1).cloned(),
        Some(rest) => rest.strip_prefix('=').map(str::to_owned),
        None => None,
    });
    let Some(path) = from_flag.or_else(|| std::env::var("LEDGER_CONFIG").ok()).map(PathBuf::from) else {
        return Ok((args, Injected::default()));
    };
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading the config file {}", path.display()))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        let line = e.span().map_or(0, |span| text.get(..span.start).map_or(0, |t| t.matches('\n').count()) + 1);
        anyhow::anyhow!("{} is not valid TOML: line {line}: {}", path.display(), e.message().trim())
    })?;
    let cli = super::Cli::command();
    let serve = cli.find_subcommand("serve").context("the serve command")?;
    let mut injected: Vec<OsString> = Vec::new();
    let mut keys = Vec::new();
    for (key, value) in &table {
        let Some(arg) = serve.get_arguments().find(|a| a.get_long() == Some(key.as_str())) else {
            let mut keys: Vec<&str> = serve.get_arguments().filter_map(|a| a.get_long()).collect();
            keys.retain(|k| !matches!(*k, "config" | "help"));
            bail!("{}: {key:?} is not a setting; the keys are: {}", path.display(), keys.join(", "));
        };
        if key == "config" {
            bail!("{}: a config file cannot name another (config)", path.display());
        }
        let in_env = arg.get_env().is_some_and(|name| std::env::var_os(name).is_some());
        if given(key) || in_env {
            continue;
        }
        keys.push(key.clone());
        let takes_value = arg.get_num_args().is_none_or(|n| n.takes_values());
        let scalar = |v: &toml::Value| -> anyhow::Result<String> {
            Ok(match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => bail!("{}: {key} must be a string, a number or a boolean", path.display()),
            })
        };
        match value {
            toml::Value::Boolean(b) if !takes_value => {
                if *b {
                    injected.push(format!("--{key}").into());
                }
            }
            toml::Value::Array(items) => {
                for item in items {
                    injected.push(format!("--{key}={}", scalar(item)?).into());
                }
            }
            other => injected.push(format!("--{key}={}", scalar(other)?).into()),
        }
    }
    let mut out = args[..=serve_at].to_vec();
    out.extend(injected);
    out.extend_from_slice(&args[serve_at + 1..]);
    Ok((out, Injected { path, keys }))
}
