//! `device import`: many devices of one site from a CSV file.
//!
//! The file has a header line naming its columns, `address,port,user,tls`
//! and optionally `ssh_port` and `interval`, in any order; then one device
//! per line. Empty lines and lines starting with `#` are ignored; a field may
//! be quoted (`"..."`, `""` for a quote inside). Per column:
//!
//! * `address`: IP address or host name as the site's agent reaches it;
//! * `port`: API port, empty for the default (8728, or 8729 with `tls`);
//! * `user`: API user;
//! * `tls`: `true`/`false` (also `yes`/`no`, `1`/`0`): API-SSL or the plain API;
//! * `ssh_port`: SSH port for configuration backups, empty for 22;
//! * `interval`: seconds between polls (10 to 86400), empty for 60.
//!
//! Every line is checked before anything is stored; the errors name the line
//! and the field, and when any line is bad nothing is added. The devices are
//! then added in one transaction. Devices the site already has (same address
//! and API port) are skipped and counted. All devices get the same password
//! (OUTPOST_ROS_PASSWORD, or a prompt), sealed per device with the tenant's
//! vault key.
use std::path::Path;

use anyhow::{Context, Result, bail};
use outpost_store::devices::{DeviceId, NewDevice, validate_new};
use outpost_store::{AdminScope, Store};

use crate::cli::Location;
use crate::data_dir::DataDir;

/// Errors reported at most, so a wrong file does not flood the terminal.
const MAX_ERRORS: usize = 20;

/// One device line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    /// Line number in the file (1-based).
    pub line: usize,
    /// Address.
    pub address: String,
    /// API port (the default for `tls` filled in).
    pub port: u16,
    /// API user.
    pub user: String,
    /// API-SSL.
    pub tls: bool,
    /// SSH port.
    pub ssh_port: u16,
    /// Seconds between polls.
    pub interval: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Column {
    Address,
    Port,
    User,
    Tls,
    SshPort,
    Interval,
}

impl Column {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "address" => Self::Address,
            "port" => Self::Port,
            "user" => Self::User,
            "tls" => Self::Tls,
            "ssh_port" => Self::SshPort,
            "interval" => Self::Interval,
            _ => return None,
        })
    }
}

/// The fields of one CSV line; `"` quotes a field (`""` inside for a quote).
fn split_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.trim().is_empty() && !was_quoted => {
                field.clear();
                quoted = true;
                was_quoted = true;
            }
            (false, '"') => return Err("a quote inside an unquoted field".into()),
            (false, ',') => {
                fields.push(if was_quoted {
                    field.clone()
                } else {
                    field.trim().to_owned()
                });
                field.clear();
                was_quoted = false;
            }
            (false, c) if was_quoted && !c.is_whitespace() => {
                return Err("text after a closing quote".into());
            }
            (false, c) => {
                if !was_quoted {
                    field.push(c);
                }
            }
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    fields.push(if was_quoted { field } else { field.trim().to_owned() });
    Ok(fields)
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Some(true),
        "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

fn parse_port(s: &str, field: &str) -> Result<Option<u16>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(Some(p)),
        _ => Err(format!("{field} {s:?} is not a port number (1 to 65535)")),
    }
}

/// Parses and checks the whole file; on failure, every error found (up to
/// [`MAX_ERRORS`]), each naming its line and field.
pub fn parse_csv(text: &str) -> Result<Vec<ImportRow>, Vec<String>> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let Some((header_line, header)) = lines.next() else {
        return Err(vec![
            "the file is empty: expected a header line `address,port,user,tls[,ssh_port][,interval]`".into(),
        ]);
    };
    let names = split_fields(header).map_err(|e| vec![format!("line {header_line} (header): {e}")])?;
    let mut columns = Vec::with_capacity(names.len());
    for name in &names {
        let Some(c) = Column::parse(&name.to_ascii_lowercase()) else {
            return Err(vec![format!(
                "line {header_line} (header): unknown column {name:?} (columns: address, port, user, tls, ssh_port, interval)"
            )]);
        };
        if columns.contains(&c) {
            return Err(vec![format!(
                "line {header_line} (header): column {name:?} appears twice"
            )]);
        }
        columns.push(c);
    }
    for (c, name) in [
        (Column::Address, "address"),
        (Column::Port, "port"),
        (Column::User, "user"),
        (Column::Tls, "tls"),
    ] {
        if !columns.contains(&c) {
            return Err(vec![format!(
                "line {header_line} (header): column {name:?} is missing (expected address,port,user,tls[,ssh_port][,interval])"
            )]);
        }
    }

    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut seen: std::collections::HashMap<(String, u16), usize> = std::collections::HashMap::new();
    for (line, text) in lines {
        match parse_row(line, text, &columns) {
            Ok(row) => match seen.get(&(row.address.clone(), row.port)) {
                Some(first) => errors.push(format!(
                    "line {line}: address {}:{} is already on line {first}",
                    row.address, row.port
                )),
                None => {
                    seen.insert((row.address.clone(), row.port), line);
                    rows.push(row);
                }
            },
            Err(e) => errors.push(format!("line {line}: {e}")),
        }
        if errors.len() >= MAX_ERRORS {
            errors.push(format!("(stopped after {MAX_ERRORS} errors)"));
            break;
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if rows.is_empty() {
        return Err(vec![format!(
            "no devices: the file has a header (line {header_line}) but no device lines"
        )]);
    }
    Ok(rows)
}

fn parse_row(line: usize, text: &str, columns: &[Column]) -> Result<ImportRow, String> {
    let fields = split_fields(text)?;
    if fields.len() != columns.len() {
        return Err(format!("{} fields, the header has {}", fields.len(), columns.len()));
    }
    let (mut address, mut port, mut user, mut tls) = (String::new(), None, String::new(), None);
    let (mut ssh_port, mut interval) = (22u16, 60u32);
    for (c, v) in columns.iter().zip(&fields) {
        match c {
            Column::Address => address.clone_from(v),
            Column::Port => port = parse_port(v, "port")?,
            Column::User => user.clone_from(v),
            Column::Tls => {
                tls = Some(parse_bool(v).ok_or_else(|| format!("tls {v:?} is not true or false"))?);
            }
            Column::SshPort => ssh_port = parse_port(v, "ssh_port")?.unwrap_or(22),
            Column::Interval => {
                if !v.is_empty() {
                    interval = v
                        .parse()
                        .map_err(|_| format!("interval {v:?} is not a number of seconds"))?;
                }
            }
        }
    }
    let tls = tls.unwrap_or(false);
    if address.is_empty() {
        return Err("address is empty".into());
    }
    if user.is_empty() {
        return Err("user is empty".into());
    }
    validate_new(&address, &user, interval)?;
    Ok(ImportRow {
        line,
        address,
        port: port.unwrap_or(if tls { 8729 } else { 8728 }),
        user,
        tls,
        ssh_port,
        interval,
    })
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// Devices added.
    pub added: Vec<DeviceId>,
    /// File lines of the devices skipped (already present).
    pub skipped_lines: Vec<usize>,
}

/// Adds `rows` to the site, each with `password` sealed with the tenant's
/// vault key, in one transaction.
pub async fn import(
    store: &Store,
    admin: &AdminScope,
    dir: &DataDir,
    tenant_name: &str,
    site_name: &str,
    rows: &[ImportRow],
    password: &str,
) -> Result<Imported> {
    let Some((tenant, site)) = store.find_site(admin, tenant_name, site_name).await? else {
        bail!(
            "no site {site_name:?} of tenant {tenant_name:?}: create it with `outpost-collector token create --tenant {tenant_name:?} --site {site_name:?}`"
        );
    };
    let vault = dir.load_vault()?;
    anyhow::ensure!(
        store.check_vault_key(admin, &vault.key_check()).await?,
        "the vault key {} is not the key this database's device passwords were sealed with",
        dir.vault_path().display()
    );
    let key = vault.tenant(&tenant.to_string());
    let devices = rows
        .iter()
        .map(|r| {
            let id = DeviceId::random();
            let sealed = key
                .seal_device_password(&id.to_string(), password)
                .context("sealing the password")?;
            Ok(NewDevice {
                id,
                site,
                address: r.address.clone(),
                api_port: r.port,
                api_tls: r.tls,
                ssh_port: r.ssh_port,
                username: r.user.clone(),
                password_sealed: sealed,
                poll_interval_secs: r.interval,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let outcome = store
        .add_devices(
            &admin.tenant_scope(tenant),
            &devices,
            &outpost_store::audit::Actor::local_operator(),
        )
        .await?;
    Ok(Imported {
        added: outcome.added,
        skipped_lines: outcome.skipped.iter().map(|&n| rows[n].line).collect(),
    })
}

/// Reads the file (`-`: standard input).
fn read_file(file: &Path) -> Result<String> {
    if file == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).context("reading standard input")?;
        return Ok(text);
    }
    std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
}

/// `device import`: checks the whole file, then asks for the password and adds the devices.
pub async fn device_import(location: &Location, tenant: &str, site: &str, file: &Path) -> Result<()> {
    let text = read_file(file)?;
    let rows = match parse_csv(&text) {
        Ok(rows) => rows,
        Err(errors) => {
            for e in &errors {
                eprintln!("{}: {e}", file.display());
            }
            bail!("{} has errors; no device was added", file.display());
        }
    };
    let password = crate::device_commands::ros_password()?;
    let (store, admin) = Store::open_as_operator(&location.data_dir, location.database_url.as_deref())
        .await
        .with_context(|| format!("opening the database for {}", location.data_dir.display()))?;
    let result = import(
        &store,
        &admin,
        &DataDir::new(&location.data_dir),
        tenant,
        site,
        &rows,
        &password,
    )
    .await;
    store.close().await;
    let imported = result?;
    println!(
        "Imported {} devices into site {site:?} of tenant {tenant:?}; the site's agent polls them within a minute.",
        imported.added.len()
    );
    if !imported.skipped_lines.is_empty() {
        let shown: Vec<String> = imported.skipped_lines.iter().take(20).map(usize::to_string).collect();
        println!(
            "Skipped {} devices the site already has at the same address and port (lines {}{}).",
            imported.skipped_lines.len(),
            shown.join(", "),
            if imported.skipped_lines.len() > shown.len() {
                ", …"
            } else {
                ""
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_parse_with_defaults_and_any_column_order() {
        let rows =
            parse_csv("# fleet\naddress,port,user,tls\n10.0.0.1,,admin,false\n10.0.0.2,18729,\"ad,min\",yes\n\n")
                .expect("parses");
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].line, rows[0].port, rows[0].ssh_port, rows[0].interval),
            (3, 8728, 22, 60)
        );
        assert_eq!(
            (rows[1].user.as_str(), rows[1].port, rows[1].tls),
            ("ad,min", 18729, true)
        );
        let rows = parse_csv("tls,user,interval,address,ssh_port,port\r\n1,u,30,h.example,2222,\r\n").expect("parses");
        assert_eq!(
            rows[0],
            ImportRow {
                line: 2,
                address: "h.example".into(),
                port: 8729,
                user: "u".into(),
                tls: true,
                ssh_port: 2222,
                interval: 30,
            }
        );
    }

    #[test]
    fn every_bad_line_is_named_with_its_field() {
        let errors = parse_csv(
            "address,port,user,tls,interval\n\
             10.0.0.1,8728,admin,false,60\n\
             10.0.0.2,99999,admin,false,60\n\
             10.0.0.3,8728,,false,60\n\
             10.0.0.4,8728,admin,maybe,60\n\
             10.0.0.5,8728,admin,false,5\n\
             10.0.0.1,8728,admin,false,60\n\
             10.0.0.6,8728,admin\n",
        )
        .expect_err("bad lines");
        assert_eq!(errors.len(), 6, "{errors:?}");
        assert!(errors[0].starts_with("line 3: port \"99999\""), "{errors:?}");
        assert!(errors[1].starts_with("line 4: user"), "{errors:?}");
        assert!(errors[2].starts_with("line 5: tls \"maybe\""), "{errors:?}");
        assert!(errors[3].starts_with("line 6: poll interval"), "{errors:?}");
        assert!(
            errors[4].contains("line 7: address 10.0.0.1:8728 is already on line 2"),
            "{errors:?}"
        );
        assert!(errors[5].starts_with("line 8: 3 fields"), "{errors:?}");
    }

    #[test]
    fn headers_are_checked() {
        assert!(parse_csv("").unwrap_err()[0].contains("empty"));
        assert!(parse_csv("address,port,user\n1.2.3.4,1,u\n").unwrap_err()[0].contains("\"tls\" is missing"));
        assert!(parse_csv("address,port,user,tls,colour\n").unwrap_err()[0].contains("unknown column \"colour\""));
        assert!(parse_csv("address,port,user,tls\n").unwrap_err()[0].contains("no device lines"));
        assert!(parse_csv("address,port,user,tls\n\"1.2.3.4,1,u,no\n").unwrap_err()[0].contains("not closed"));
    }
}
