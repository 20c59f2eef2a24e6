//! `shoal config …`, and the code `shoal secret …` shares with it: configs and secrets are the
//! same kind of object (a name, labels and a blob of data) under `/configs` and `/secrets`;
//! they differ only in that a secret's data never comes back from the daemon.

use std::io::Read;

use anyhow::{Context, Result};
use base64::Engine;
use serde_json::{json, Value};

use super::client::{encode, Client, Filters, Query};
use super::opts::{self, Kind};
use super::table::{self, str_at, Listing};
use super::{inspect, join_errors};

#[derive(clap::Subcommand, Debug)]
pub enum ConfigCmd {
    /// Create a config (or secret) from a file or STDIN as content
    Create(CreateArgs),
    /// List configs (or secrets)
    #[command(alias = "list")]
    Ls(ListArgs),
    /// Display detailed information on one or more configs (or secrets)
    Inspect(InspectArgs),
    /// Remove one or more configs (or secrets)
    #[command(alias = "remove")]
    Rm(RmArgs),
}

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Labels (K=V)
    #[arg(short = 'l', long = "label", value_name = "K=V")]
    pub labels: Vec<String>,
    /// Name of the object
    pub name: String,
    /// File to read the content from, or "-" for STDIN
    pub file: String,
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Only display IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Filter output based on conditions provided (id, label, name)
    #[arg(short, long = "filter", value_name = "filter")]
    pub filters: Vec<String>,
    /// Format output: "table", "json" or a Go-style template
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// Print the information in a human friendly format
    #[arg(long)]
    pub pretty: bool,
    /// Format output using a Go-style template
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

pub async fn run(client: &Client, cmd: ConfigCmd) -> Result<()> {
    run_kind(client, Kind::Config, cmd).await
}

/// Runs a config or secret command; `secret` reuses these argument types.
pub async fn run_kind(client: &Client, kind: Kind, cmd: ConfigCmd) -> Result<()> {
    match cmd {
        ConfigCmd::Create(args) => create(client, kind, args).await,
        ConfigCmd::Ls(args) => list(client, kind, args).await,
        ConfigCmd::Inspect(args) => {
            let pretty_fn: &dyn Fn(&Value) -> String = match kind {
                Kind::Config => &pretty_config,
                Kind::Secret => &pretty_secret,
            };
            let pretty_fn = args.pretty.then_some(pretty_fn);
            inspect(
                client,
                &collection(kind),
                &args.names,
                args.format.as_deref(),
                pretty_fn,
            )
            .await
        }
        ConfigCmd::Rm(args) => {
            let mut errors = Vec::new();
            for name in &args.names {
                match client
                    .delete(&format!("{}/{}", collection(kind), encode(name)))
                    .await
                {
                    Ok(()) => outln!("{name}"),
                    Err(err) => errors.push(err.to_string()),
                }
            }
            join_errors(errors)
        }
    }
}

fn collection(kind: Kind) -> String {
    format!("/{}s", kind.noun())
}

async fn create(client: &Client, kind: Kind, args: CreateArgs) -> Result<()> {
    let data = if args.file == "-" {
        let mut data = Vec::new();
        std::io::stdin()
            .read_to_end(&mut data)
            .context("reading the content from STDIN")?;
        data
    } else {
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file))?
    };
    let spec = create_spec(&args.name, &args.labels, &data);
    let response = client
        .post(&format!("{}/create", collection(kind)), &spec)
        .await?;
    outln!("{}", str_at(&response, &["ID"]));
    Ok(())
}

/// The ConfigSpec/SecretSpec docker sends: `{Name, Labels, Data}` with the data base64-encoded.
pub fn create_spec(name: &str, labels: &[String], data: &[u8]) -> Value {
    json!({
        "Name": name,
        "Labels": opts::kv_json(labels),
        "Data": base64::engine::general_purpose::STANDARD.encode(data),
    })
}

async fn list(client: &Client, kind: Kind, args: ListArgs) -> Result<()> {
    let filters = Filters::parse(&args.filters)?;
    let objects = client
        .get(&Query::new().filters(&filters).to_path(&collection(kind)))
        .await?;
    let objects = objects.as_array().cloned().unwrap_or_default();
    listing(kind, &objects, chrono::Utc::now()).print(args.format.as_deref(), args.quiet)
}

/// The `config ls` / `secret ls` table, sorted by name.
pub fn listing(kind: Kind, objects: &[Value], now: chrono::DateTime<chrono::Utc>) -> Listing {
    let mut objects: Vec<&Value> = objects.iter().collect();
    objects.sort_by(|a, b| {
        table::natural_cmp(str_at(a, &["Spec", "Name"]), str_at(b, &["Spec", "Name"]))
    });
    let headers: &[&'static str] = match kind {
        Kind::Config => &["ID", "NAME", "CREATED", "UPDATED"],
        Kind::Secret => &["ID", "NAME", "DRIVER", "CREATED", "UPDATED"],
    };
    let mut listing = Listing::new(headers);
    for object in objects {
        let id = str_at(object, &["ID"]).to_string();
        let name = str_at(object, &["Spec", "Name"]).to_string();
        let driver = str_at(object, &["Spec", "Driver", "Name"]).to_string();
        let created = table::ago(str_at(object, &["CreatedAt"]), now);
        let updated = table::ago(str_at(object, &["UpdatedAt"]), now);
        let labels = object
            .pointer("/Spec/Labels")
            .and_then(Value::as_object)
            .map(|l| {
                l.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let mut record = json!({
            "ID": id, "Name": name, "CreatedAt": created, "UpdatedAt": updated, "Labels": labels,
        });
        let row = match kind {
            Kind::Config => vec![id, name, created, updated],
            Kind::Secret => {
                record["Driver"] = json!(driver);
                vec![id, name, driver, created, updated]
            }
        };
        listing.push(row, record);
    }
    listing
}

fn push_labels(out: &mut String, object: &Value) {
    if let Some(labels) = object
        .pointer("/Spec/Labels")
        .and_then(Value::as_object)
        .filter(|l| !l.is_empty())
    {
        out.push_str("\nLabels:");
        for (k, v) in labels {
            match v.as_str().unwrap_or("") {
                "" => out.push_str(&format!("\n - {k}")),
                v => out.push_str(&format!("\n - {k}={v}")),
            }
        }
    }
}

/// `docker config inspect --pretty`, with the data shown as text.
pub fn pretty_config(config: &Value) -> String {
    let mut out = format!(
        "ID:\t\t\t{}\nName:\t\t\t{}",
        str_at(config, &["ID"]),
        str_at(config, &["Spec", "Name"])
    );
    push_labels(&mut out, config);
    let data = base64::engine::general_purpose::STANDARD
        .decode(str_at(config, &["Spec", "Data"]))
        .map(|d| String::from_utf8_lossy(&d).into_owned())
        .unwrap_or_default();
    out.push_str(&format!(
        "\nCreated at:            \t{}\nUpdated at:            \t{}\nData:\n{}",
        table::pretty_time(str_at(config, &["CreatedAt"])),
        table::pretty_time(str_at(config, &["UpdatedAt"])),
        data
    ));
    out
}

/// `docker secret inspect --pretty`: never any data.
pub fn pretty_secret(secret: &Value) -> String {
    let mut out = format!(
        "ID:              {}\nName:              {}",
        str_at(secret, &["ID"]),
        str_at(secret, &["Spec", "Name"])
    );
    push_labels(&mut out, secret);
    out.push_str(&format!(
        "\nDriver:            {}\nCreated at:        {}\nUpdated at:        {}",
        str_at(secret, &["Spec", "Driver", "Name"]),
        table::pretty_time(str_at(secret, &["CreatedAt"])),
        table::pretty_time(str_at(secret, &["UpdatedAt"]))
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_spec_base64_encodes_data_and_always_has_labels() {
        assert_eq!(
            create_spec("app.conf", &[], b"hello"),
            json!({"Name": "app.conf", "Labels": {}, "Data": "aGVsbG8="})
        );
        assert_eq!(
            create_spec("x", &["env=prod".into()], b"")["Labels"],
            json!({"env": "prod"})
        );
    }

    #[test]
    fn pretty_config_shows_data_as_text_and_secret_never_does() {
        let object = json!({
            "ID": "cfg1",
            "CreatedAt": "2024-01-01T10:00:00.5Z",
            "UpdatedAt": "2024-01-01T10:00:00.5Z",
            "Spec": {"Name": "app.conf", "Labels": {"a": "b"}, "Data": "aGVsbG8="}
        });
        assert_eq!(
            pretty_config(&object),
            "ID:\t\t\tcfg1\nName:\t\t\tapp.conf\nLabels:\n - a=b\n\
             Created at:            \t2024-01-01 10:00:00.5 +0000 utc\n\
             Updated at:            \t2024-01-01 10:00:00.5 +0000 utc\nData:\nhello"
        );
        assert!(!pretty_secret(&object).contains("hello"));
    }

    #[test]
    fn secret_ls_has_a_driver_column() {
        let now = chrono::Utc::now();
        let listing = listing(
            Kind::Secret,
            &[json!({"ID": "s1", "Spec": {"Name": "db"}})],
            now,
        );
        assert_eq!(
            listing.headers,
            vec!["ID", "NAME", "DRIVER", "CREATED", "UPDATED"]
        );
        assert_eq!(listing.render(None, true).unwrap(), "s1\n");
    }
}
