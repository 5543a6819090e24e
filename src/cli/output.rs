//! How the CLI prints lists: aligned tables whose first heading carries the count (`USER (6)`), or the
//! same data as JSON or YAML for scripts. Also the confirmation of destructive commands.

use serde::Serialize;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
    Yaml,
}

#[derive(clap::Args)]
pub struct FormatArg {
    /// How to print the list
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// A table: headings and rows of cells, printed aligned.
pub struct Table {
    headings: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headings: &[&str]) -> Table {
        Table { headings: headings.iter().map(|h| h.to_string()).collect(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, the count after the first heading; no trailing spaces.
    pub fn render(&self) -> String {
        let mut headings = self.headings.clone();
        if let Some(first) = headings.first_mut() {
            *first = format!("{first} ({})", self.rows.len());
        }
        let mut widths: Vec<usize> = headings.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(cell.chars().count());
                }
            }
        }
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths.get(i).copied().unwrap_or(0))).collect();
            format!("{}\n", padded.join("  ").trim_end())
        };
        let mut out = line(&headings);
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

/// Prints `data` as JSON or YAML, or as the tables `tables` makes of it (an empty line between tables;
/// `empty` instead when every table is empty).
pub fn print<T: Serialize>(format: Format, data: &T, empty: &str, tables: impl FnOnce() -> Vec<Table>) -> Result<(), String> {
    match format {
        Format::Json => say!("{}", serde_json::to_string_pretty(data).map_err(|e| e.to_string())?),
        Format::Yaml => super::write_out(serde_saphyr::to_string(data).map_err(|e| e.to_string())?.as_bytes()),
        Format::Table => {
            let tables = tables();
            if tables.iter().all(Table::is_empty) {
                say!("{empty}");
                return Ok(());
            }
            let text: Vec<String> = tables.iter().filter(|t| !t.is_empty()).map(Table::render).collect();
            super::write_out(text.join("\n").as_bytes());
        }
    }
    Ok(())
}

/// Asks before a destructive command: `--force` skips the question; without a terminal to ask on, the
/// command is refused (scripts pass `--force`).
pub fn confirm(what: &str, force: bool) -> Result<(), String> {
    if force {
        return Ok(());
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Err(format!("{what} needs confirmation: run it on a terminal, or add --force"));
    }
    let answer = super::prompt(&format!("{what}? [y/N] "))?;
    if matches!(answer.to_lowercase().as_str(), "y" | "yes") { Ok(()) } else { Err("nothing changed".into()) }
}

/// A time as the tables show it: `2026-12-02 18:00 UTC`, or `-`.
pub fn when(at: Option<crate::model::Millis>) -> String {
    at.map_or_else(|| "-".to_string(), crate::app::components::format_time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_aligned_with_the_count_in_the_first_heading() {
        let mut t = Table::new(&["USER", "ROLE", "RESOURCE"]);
        t.row(vec!["suzie@infrahq.com".into(), "admin".into(), "production".into()]);
        t.row(vec!["al@x.io".into(), "view".into(), "production.web".into()]);
        assert_eq!(t.render(), "USER (2)           ROLE   RESOURCE\nsuzie@infrahq.com  admin  production\nal@x.io            view   production.web\n");
    }
}
