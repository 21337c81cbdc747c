//! DDL: schemas and tables with Redshift's physical attributes.

use std::collections::BTreeMap;

use basalt_catalog::{
    CHAR_MAX, CatalogError, ColumnMeta, Constraints, DistStyle, Encoding, ForeignKey, Identity,
    SchemaMeta, SortKey, SortKeyKind, SqlType, TableData, TableMeta, VARCHAR_MAX,
};
use basalt_sql::sqlparser::ast::{
    AlterTableOperation, CharacterLength, ColumnDef, ColumnOption, CreateTable,
    CreateTableLikeKind, DataType as SqlDataType, ExactNumberInfo, ObjectType, RenameTableNameKind,
    Statement, TableConstraint, TimezoneInfo,
};
use basalt_sql::{
    ColumnAttribute, ParsedStatement, SortKeyStyle, TableAttributes, column_attribute,
};
use basalt_storage::hash_fingerprint;

use crate::session::{StatementOutput, ident_name, split_name};
use crate::{NodeError, Session};

/// Map a declared SQL type to a column type, with Redshift's defaults.
pub(crate) fn sql_type(dt: &SqlDataType) -> Result<SqlType, NodeError> {
    let len = |l: &Option<CharacterLength>, default: u32, max: u32| -> u32 {
        match l {
            Some(CharacterLength::IntegerLength { length, .. }) => (*length as u32).min(max),
            Some(CharacterLength::Max) => max,
            None => default,
        }
    };
    let decimal = |info: &ExactNumberInfo| -> Result<SqlType, NodeError> {
        let (p, s) = match info {
            ExactNumberInfo::None => (18, 0),
            ExactNumberInfo::Precision(p) => (*p, 0),
            ExactNumberInfo::PrecisionAndScale(p, s) => (*p, *s),
        };
        if !(1..=38).contains(&p) || s < 0 || s as u64 > p {
            return Err(NodeError::invalid(
                "22023",
                format!(
                    "NUMERIC precision {p} must be between 1 and 38 and scale {s} between 0 and the precision"
                ),
            ));
        }
        Ok(SqlType::Decimal {
            precision: p as u8,
            scale: s as i8,
        })
    };
    Ok(match dt {
        SqlDataType::SmallInt(_) | SqlDataType::Int2(_) => SqlType::SmallInt,
        SqlDataType::Int(_) | SqlDataType::Integer(_) | SqlDataType::Int4(_) => SqlType::Integer,
        SqlDataType::BigInt(_) | SqlDataType::Int8(_) => SqlType::BigInt,
        SqlDataType::Decimal(i) | SqlDataType::Numeric(i) | SqlDataType::Dec(i) => decimal(i)?,
        SqlDataType::Real | SqlDataType::Float4 => SqlType::Real,
        SqlDataType::Float(info) => match info {
            ExactNumberInfo::Precision(p) if *p <= 24 => SqlType::Real,
            _ => SqlType::Double,
        },
        SqlDataType::Double(_) | SqlDataType::DoublePrecision | SqlDataType::Float8 => {
            SqlType::Double
        }
        SqlDataType::Boolean | SqlDataType::Bool => SqlType::Boolean,
        SqlDataType::Char(l) | SqlDataType::Character(l) => SqlType::Char(len(l, 1, CHAR_MAX)),
        SqlDataType::Varchar(l)
        | SqlDataType::CharacterVarying(l)
        | SqlDataType::Nvarchar(l)
        | SqlDataType::CharVarying(l) => SqlType::Varchar(len(l, 256, VARCHAR_MAX)),
        SqlDataType::Text | SqlDataType::String(_) => SqlType::Varchar(256),
        SqlDataType::Date => SqlType::Date,
        SqlDataType::Datetime(_) => SqlType::Timestamp,
        SqlDataType::Timestamp(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => {
            SqlType::Timestamp
        }
        SqlDataType::Timestamp(_, _) => SqlType::TimestampTz,
        SqlDataType::TimestampNtz(_) => SqlType::Timestamp,
        SqlDataType::Time(_, _) => SqlType::Time,
        SqlDataType::Custom(name, mods) => {
            let n = name.to_string().to_ascii_lowercase();
            match n.as_str() {
                "timestamptz" => SqlType::TimestampTz,
                "bpchar" => SqlType::Char(mods.first().and_then(|m| m.parse().ok()).unwrap_or(1)),
                "float4" => SqlType::Real,
                "float8" => SqlType::Double,
                _ => {
                    return Err(NodeError::invalid(
                        "42704",
                        format!("type \"{name}\" does not exist"),
                    ));
                }
            }
        }
        other => return Err(NodeError::unsupported(format!("data type {other}"))),
    })
}

fn now_text() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string()
}

impl Session {
    pub(crate) async fn ddl(&mut self, ps: ParsedStatement) -> Result<StatementOutput, NodeError> {
        match &ps.statement {
            Statement::CreateSchema {
                schema_name,
                if_not_exists,
                ..
            } => {
                let name = match schema_name {
                    basalt_sql::sqlparser::ast::SchemaName::Simple(n)
                    | basalt_sql::sqlparser::ast::SchemaName::NamedAuthorization(n, _) => {
                        split_name(n)?.1
                    }
                    basalt_sql::sqlparser::ast::SchemaName::UnnamedAuthorization(i) => {
                        ident_name(i)
                    }
                };
                let user = self.user.clone();
                let t = &mut self.txn_mut().txn;
                if t.state().schemas.contains_key(&name) {
                    if *if_not_exists {
                        return Ok(StatementOutput::command("CREATE SCHEMA"));
                    }
                    return Err(CatalogError::SchemaExists { name }.into());
                }
                t.put_schema(SchemaMeta { name, owner: user });
                Ok(StatementOutput::command("CREATE SCHEMA"))
            }
            Statement::Drop {
                object_type: ObjectType::Schema,
                if_exists,
                names,
                cascade,
                ..
            } => {
                for n in names {
                    let name = split_name(n)?.1;
                    let t = &mut self.txn_mut().txn;
                    if !t.state().schemas.contains_key(&name) {
                        if *if_exists {
                            continue;
                        }
                        return Err(CatalogError::SchemaNotFound { name }.into());
                    }
                    let tables: Vec<_> = t
                        .state()
                        .tables
                        .values()
                        .filter(|x| x.schema == name)
                        .map(|x| x.id)
                        .collect();
                    let views: Vec<String> = t
                        .state()
                        .views
                        .values()
                        .filter(|v| v.schema == name)
                        .map(|v| v.name.clone())
                        .collect();
                    if (!tables.is_empty() || !views.is_empty()) && !cascade {
                        return Err(CatalogError::SchemaNotEmpty { name }.into());
                    }
                    for id in tables {
                        t.remove_table(id);
                    }
                    for v in views {
                        t.remove_view(&name, &v);
                    }
                    t.remove_schema(&name);
                }
                Ok(StatementOutput::command("DROP SCHEMA"))
            }
            Statement::Drop {
                object_type: ObjectType::Table,
                if_exists,
                names,
                cascade,
                ..
            } => {
                for n in names {
                    let state = self.txn_mut().txn.state().clone();
                    match self.resolve_table(&state, n) {
                        Ok(table) => {
                            if !table.temporary {
                                self.drop_dependents(&state, &table.schema, &table.name, *cascade)?;
                            }
                            self.txn_mut().txn.remove_table(table.id);
                        }
                        Err(e) => {
                            let (schema, name) = split_name(n)?;
                            if state
                                .view(schema.as_deref().unwrap_or("public"), &name)
                                .is_some()
                            {
                                return Err(NodeError::invalid(
                                    "42809",
                                    format!("\"{name}\" is not a table"),
                                ));
                            }
                            if !*if_exists {
                                return Err(e);
                            }
                        }
                    }
                }
                Ok(StatementOutput::command("DROP TABLE"))
            }
            Statement::CreateTable(ct) => {
                let attrs = ps.table_attributes.clone().unwrap_or_default();
                self.create_table(ct, &attrs).await
            }
            Statement::AlterTable(at) => {
                let state = self.txn_mut().txn.state().clone();
                let table = match self.resolve_table(&state, &at.name) {
                    Ok(t) => t,
                    Err(_) if at.if_exists => return Ok(StatementOutput::command("ALTER TABLE")),
                    Err(e) => return Err(e),
                };
                self.alter_table(table, &at.operations).await
            }
            Statement::Truncate(tr) => {
                for target in &tr.table_names {
                    let state = self.txn_mut().txn.state().clone();
                    let table = self.resolve_table(&state, &target.name)?;
                    let t = self
                        .txn_mut()
                        .txn
                        .table_mut(table.id)
                        .expect("resolved table exists");
                    t.rows_changed += t.data.row_count();
                    t.data = TableData::default();
                    // The load ledger goes with the rows: the same files load again.
                    t.loaded.clear();
                    t.version += 1;
                }
                Ok(StatementOutput::command("TRUNCATE TABLE"))
            }
            other => Err(NodeError::unsupported(other.to_string())),
        }
    }

    async fn create_table(
        &mut self,
        ct: &CreateTable,
        attrs: &TableAttributes,
    ) -> Result<StatementOutput, NodeError> {
        let (schema, mut name) = split_name(&ct.name)?;
        let temporary = ct.temporary || name.starts_with('#');
        if name.starts_with('#') {
            name = name.trim_start_matches('#').to_string();
        }
        if name.len() > 127 {
            // Redshift truncates names to 127 bytes; cut at a character boundary.
            let mut end = 127;
            while !name.is_char_boundary(end) {
                end -= 1;
            }
            name.truncate(end);
        }
        let schema = if temporary {
            self.temp_schema()
        } else {
            schema.unwrap_or_else(|| "public".to_string())
        };
        let state = self.txn_mut().txn.state().clone();
        if !temporary && !state.schemas.contains_key(&schema) {
            return Err(CatalogError::SchemaNotFound { name: schema }.into());
        }
        if state.table_by_name(&schema, &name).is_some() {
            if ct.if_not_exists {
                return Ok(StatementOutput::command("CREATE TABLE"));
            }
            return Err(CatalogError::TableExists { name }.into());
        }

        let mut columns: Vec<ColumnMeta> = vec![];
        let mut constraints = Constraints::default();
        let mut col_distkey: Option<String> = None;
        let mut col_sortkey: Option<String> = None;
        let mut explicit_encoding = false;
        let mut inherited: Option<TableMeta> = None;

        if let Some(like) = &ct.like {
            let like = match like {
                CreateTableLikeKind::Parenthesized(l) | CreateTableLikeKind::Plain(l) => l,
            };
            let parent = self.resolve_table(&state, &like.name)?;
            let with_defaults = like.defaults.as_ref().is_some_and(|d| {
                matches!(
                    d,
                    basalt_sql::sqlparser::ast::CreateTableLikeDefaults::Including
                )
            });
            for c in &parent.columns {
                let mut c = c.clone();
                c.id = columns.len() as u32;
                if !with_defaults {
                    c.default = None;
                }
                columns.push(c);
            }
            inherited = Some(parent);
        }

        for cd in &ct.columns {
            columns.push(self.column_def(
                cd,
                columns.len() as u32,
                &mut constraints,
                &mut col_distkey,
                &mut col_sortkey,
                &mut explicit_encoding,
            )?);
        }
        for tc in &ct.constraints {
            match tc {
                TableConstraint::PrimaryKey(pk) => {
                    constraints.primary_key = pk
                        .columns
                        .iter()
                        .map(|c| match &c.column.expr {
                            basalt_sql::sqlparser::ast::Expr::Identifier(i) => ident_name(i),
                            e => e.to_string().to_lowercase(),
                        })
                        .collect()
                }
                TableConstraint::Unique(u) => constraints.unique.push(
                    u.columns
                        .iter()
                        .map(|c| c.column.expr.to_string().to_lowercase())
                        .collect(),
                ),
                TableConstraint::ForeignKey(fk) => constraints.foreign_keys.push(ForeignKey {
                    columns: fk.columns.iter().map(ident_name).collect(),
                    ref_table: fk.foreign_table.to_string(),
                    ref_columns: fk.referred_columns.iter().map(ident_name).collect(),
                }),
                _ => {}
            }
        }
        // A primary key implies NOT NULL (Postgres and Redshift), and names real columns.
        for key in &constraints.primary_key {
            match columns.iter_mut().find(|c| &c.name == key) {
                Some(c) => c.nullable = false,
                None if ct.query.is_none() => {
                    return Err(NodeError::invalid(
                        "42703",
                        format!("column \"{key}\" named in key does not exist"),
                    ));
                }
                None => {}
            }
        }

        // CTAS: columns come from the query.
        let ctas_query = ct.query.clone();
        if let Some(q) = &ctas_query {
            if !columns.is_empty()
                && ct
                    .columns
                    .iter()
                    .any(|c| c.data_type != SqlDataType::Unspecified)
            {
                return Err(NodeError::unsupported(
                    "CREATE TABLE with both column definitions and AS",
                ));
            }
            let names: Vec<String> = if attrs.ctas_columns.is_empty() {
                ct.columns.iter().map(|c| ident_name(&c.name)).collect()
            } else {
                attrs.ctas_columns.clone()
            };
            let (_state, _pin) = self.refresh_view();
            let plan = self
                .ctx
                .state()
                .statement_to_plan(datafusion::sql::parser::Statement::Statement(Box::new(
                    Statement::Query(q.clone()),
                )))
                .await?;
            columns.clear();
            for (i, f) in plan.schema().fields().iter().enumerate() {
                let ty = f
                    .metadata()
                    .get(basalt_catalog::SQL_TYPE_METADATA_KEY)
                    .and_then(|m| SqlType::from_metadata(m))
                    .or_else(|| SqlType::from_arrow(f.data_type()))
                    .ok_or_else(|| {
                        NodeError::unsupported(format!(
                            "column \"{}\" of type {} in CREATE TABLE AS",
                            f.name(),
                            f.data_type()
                        ))
                    })?;
                let name = names
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| f.name().to_lowercase());
                if columns.iter().any(|c: &ColumnMeta| c.name == name) {
                    return Err(NodeError::invalid(
                        "42701",
                        format!("column \"{name}\" specified more than once"),
                    ));
                }
                columns.push(ColumnMeta {
                    id: i as u32,
                    name,
                    ty,
                    nullable: true,
                    default: None,
                    identity: None,
                    encoding: Encoding::Auto,
                });
            }
        }
        if columns.is_empty() {
            return Err(NodeError::invalid(
                "42601",
                "a table must have at least one column",
            ));
        }
        if columns.len() > 1600 {
            return Err(NodeError::invalid(
                "54011",
                "tables can have at most 1600 columns",
            ));
        }
        for (i, c) in columns.iter().enumerate() {
            if columns[..i].iter().any(|o| o.name == c.name) {
                return Err(NodeError::invalid(
                    "42701",
                    format!("column \"{}\" specified more than once", c.name),
                ));
            }
        }

        // Distribution.
        let distkey = attrs
            .distkey
            .clone()
            .or(col_distkey)
            .or_else(|| inherited.as_ref().and_then(|p| p.distkey.clone()));
        let diststyle = match (attrs.diststyle.as_deref(), &distkey) {
            (None, Some(_)) | (Some("KEY"), Some(_)) => DistStyle::Key,
            (Some("KEY"), None) => {
                return Err(NodeError::invalid(
                    "42601",
                    "DISTSTYLE KEY requires a DISTKEY column",
                ));
            }
            (Some(other), Some(_)) => {
                return Err(NodeError::invalid(
                    "42601",
                    format!("DISTKEY cannot be used with DISTSTYLE {other}"),
                ));
            }
            (Some("EVEN"), None) => DistStyle::Even,
            (Some("ALL"), None) => DistStyle::All,
            (Some(_), None) => DistStyle::Auto,
            (None, None) => inherited
                .as_ref()
                .map(|p| p.diststyle)
                .unwrap_or(DistStyle::Auto),
        };
        if let Some(k) = &distkey
            && !columns.iter().any(|c| &c.name == k)
        {
            return Err(CatalogError::ColumnNotFound {
                table: name,
                column: k.clone(),
            }
            .into());
        }
        // Sort key.
        let sortkey = match (&attrs.sortkey, col_sortkey) {
            (Some(s), _) if s.style == SortKeyStyle::Auto => None,
            (Some(s), _) => Some(SortKey {
                kind: if s.style == SortKeyStyle::Interleaved {
                    SortKeyKind::Interleaved
                } else {
                    SortKeyKind::Compound
                },
                columns: s.columns.clone(),
            }),
            (None, Some(c)) => Some(SortKey {
                kind: SortKeyKind::Compound,
                columns: vec![c],
            }),
            (None, None) => inherited.as_ref().and_then(|p| p.sortkey.clone()),
        };
        if let Some(sk) = &sortkey {
            for c in &sk.columns {
                if !columns.iter().any(|x| &x.name == c) {
                    return Err(CatalogError::ColumnNotFound {
                        table: name,
                        column: c.clone(),
                    }
                    .into());
                }
            }
            if sk.kind == SortKeyKind::Interleaved && sk.columns.len() > 8 {
                return Err(NodeError::invalid(
                    "42601",
                    "an INTERLEAVED SORTKEY can have at most 8 columns",
                ));
            }
            if sk.columns.len() > 400 {
                return Err(NodeError::invalid(
                    "42601",
                    "a SORTKEY can have at most 400 columns",
                ));
            }
        }
        // Encodings: ENCODE AUTO unless some column declared one.
        let encode_auto = attrs.encode_auto || !explicit_encoding;
        for c in &mut columns {
            if c.encoding == Encoding::Auto && !encode_auto {
                let in_sortkey = sortkey
                    .as_ref()
                    .is_some_and(|s| s.columns.contains(&c.name));
                c.encoding = if in_sortkey || temporary {
                    Encoding::Raw
                } else {
                    c.ty.default_encoding()
                };
            }
        }

        let user = self.user.clone();
        let t = &mut self.txn_mut().txn;
        if temporary && !t.state().schemas.contains_key(&schema) {
            t.put_schema(SchemaMeta {
                name: schema.clone(),
                owner: user,
            });
        }
        let t = &mut self.txn.as_mut().expect("txn open").txn;
        let id = t.allocate_table_id();
        let identity_next: BTreeMap<u32, i64> = columns
            .iter()
            .filter_map(|c| c.identity.as_ref().map(|i| (c.id, i.seed)))
            .collect();
        let table = TableMeta {
            id,
            schema,
            name,
            next_column_id: columns.len() as u32,
            columns,
            diststyle,
            distkey,
            sortkey,
            encode_auto,
            backup: attrs
                .backup
                .or(inherited.as_ref().map(|p| p.backup))
                .unwrap_or(true),
            temporary,
            constraints,
            owner: self.user.clone(),
            created_at: now_text(),
            hash_fingerprint: hash_fingerprint(),
            identity_next,
            version: 0,
            data: TableData::default(),
            stats: None,
            rows_changed: 0,
            auto_style: None,
            loaded: Default::default(),
        };
        t.insert_table(table);
        if let Some(q) = ctas_query {
            // Redshift analyzes a table CTAS creates: the statistics of the rows as they are
            // written (none for no rows).
            let rows = self
                .insert_query(id, None, Statement::Query(q), true)
                .await?;
            if self.txn_table(id).stats.is_none() {
                self.analyze_after_load(id).await?;
            }
            return Ok(StatementOutput::command("SELECT").with_rows_from_ctas(rows));
        }
        Ok(StatementOutput::command("CREATE TABLE"))
    }

    #[allow(clippy::too_many_arguments)]
    fn column_def(
        &self,
        cd: &ColumnDef,
        id: u32,
        constraints: &mut Constraints,
        distkey: &mut Option<String>,
        sortkey: &mut Option<String>,
        explicit_encoding: &mut bool,
    ) -> Result<ColumnMeta, NodeError> {
        let name = ident_name(&cd.name);
        // Postgres's SERIAL types: an integer column numbered like GENERATED BY DEFAULT AS
        // IDENTITY (Redshift has no sequences).
        let serial = match &cd.data_type {
            SqlDataType::Custom(n, _) => match n.to_string().to_ascii_lowercase().as_str() {
                "serial" | "serial4" => Some(SqlType::Integer),
                "bigserial" | "serial8" => Some(SqlType::BigInt),
                "smallserial" | "serial2" => Some(SqlType::SmallInt),
                _ => None,
            },
            _ => None,
        };
        let ty = match serial {
            Some(t) => t,
            None => sql_type(&cd.data_type)?,
        };
        let mut col = ColumnMeta {
            id,
            name: name.clone(),
            ty,
            nullable: serial.is_none(),
            default: None,
            identity: serial.map(|_| basalt_catalog::Identity {
                seed: 1,
                step: 1,
                by_default: true,
            }),
            encoding: Encoding::Auto,
        };
        for opt in &cd.options {
            match &opt.option {
                ColumnOption::NotNull => col.nullable = false,
                ColumnOption::Null => col.nullable = true,
                ColumnOption::Default(e) => col.default = Some(e.to_string()),
                ColumnOption::PrimaryKey(_) => {
                    constraints.primary_key = vec![name.clone()];
                    col.nullable = false;
                }
                ColumnOption::Unique(_) => constraints.unique.push(vec![name.clone()]),
                ColumnOption::ForeignKey(fk) => constraints.foreign_keys.push(ForeignKey {
                    columns: vec![name.clone()],
                    ref_table: fk.foreign_table.to_string(),
                    ref_columns: fk.referred_columns.iter().map(ident_name).collect(),
                }),
                ColumnOption::Collation(_) | ColumnOption::Comment(_) => {}
                o @ ColumnOption::DialectSpecific(_) => match column_attribute(o) {
                    Some(ColumnAttribute::Encode(e)) => {
                        col.encoding = Encoding::parse(&e).ok_or_else(|| {
                            NodeError::invalid("42704", format!("invalid encoding type \"{e}\""))
                        })?;
                        if !col.encoding.accepts(&col.ty) {
                            return Err(NodeError::invalid(
                                "0A000",
                                format!(
                                    "encoding {} is not supported for column \"{name}\" of type {}",
                                    e.to_ascii_uppercase(),
                                    col.ty.display_name()
                                ),
                            ));
                        }
                        *explicit_encoding = true;
                    }
                    Some(ColumnAttribute::DistKey) => *distkey = Some(name.clone()),
                    Some(ColumnAttribute::SortKey) => *sortkey = Some(name.clone()),
                    Some(ColumnAttribute::Identity {
                        seed,
                        step,
                        by_default,
                    }) => {
                        if !matches!(ty, SqlType::Integer | SqlType::BigInt | SqlType::SmallInt) {
                            return Err(NodeError::invalid(
                                "42601",
                                format!("IDENTITY column \"{name}\" must be INT or BIGINT"),
                            ));
                        }
                        if step == 0 {
                            return Err(NodeError::invalid("42601", "IDENTITY step cannot be 0"));
                        }
                        col.identity = Some(Identity {
                            seed,
                            step,
                            by_default,
                        });
                        col.nullable = false;
                    }
                    None => return Err(NodeError::unsupported(format!("column option {o}"))),
                },
                other => {
                    return Err(NodeError::unsupported(format!("column option {other}")));
                }
            }
        }
        Ok(col)
    }

    async fn alter_table(
        &mut self,
        table: TableMeta,
        ops: &[AlterTableOperation],
    ) -> Result<StatementOutput, NodeError> {
        for op in ops {
            let state = self.txn_mut().txn.state().clone();
            let current = state
                .tables
                .get(&table.id)
                .cloned()
                .expect("table resolved");
            match op {
                AlterTableOperation::RenameTable { table_name } => {
                    let new = match table_name {
                        RenameTableNameKind::As(n) | RenameTableNameKind::To(n) => split_name(n)?.1,
                    };
                    if state.table_by_name(&current.schema, &new).is_some()
                        || state.view(&current.schema, &new).is_some()
                    {
                        return Err(CatalogError::TableExists { name: new }.into());
                    }
                    if !current.temporary {
                        self.rename_in_views(&state, &current.schema, &current.name, &new)?;
                    }
                    let t = self.txn_mut().txn.table_mut(table.id).expect("exists");
                    t.name = new;
                    t.version += 1;
                    self.txn_mut().txn.mark_ddl();
                }
                AlterTableOperation::RenameColumn {
                    old_column_name,
                    new_column_name,
                } => {
                    let old = ident_name(old_column_name);
                    let new = ident_name(new_column_name);
                    if current.column(&old).is_none() {
                        return Err(CatalogError::ColumnNotFound {
                            table: current.name.clone(),
                            column: old,
                        }
                        .into());
                    }
                    if current.column(&new).is_some() {
                        return Err(CatalogError::ColumnExists {
                            table: current.name.clone(),
                            column: new,
                        }
                        .into());
                    }
                    let t = self.txn_mut().txn.table_mut(table.id).expect("exists");
                    for c in &mut t.columns {
                        if c.name == old {
                            c.name = new.clone();
                        }
                    }
                    if t.distkey.as_deref() == Some(old.as_str()) {
                        t.distkey = Some(new.clone());
                    }
                    if let Some(sk) = &mut t.sortkey {
                        for c in &mut sk.columns {
                            if *c == old {
                                *c = new.clone();
                            }
                        }
                    }
                    t.version += 1;
                    self.txn_mut().txn.mark_ddl();
                }
                AlterTableOperation::AddColumn {
                    column_def,
                    if_not_exists,
                    ..
                } => {
                    let name = ident_name(&column_def.name);
                    if current.column(&name).is_some() {
                        if *if_not_exists {
                            continue;
                        }
                        return Err(CatalogError::ColumnExists {
                            table: current.name.clone(),
                            column: name,
                        }
                        .into());
                    }
                    let mut cons = Constraints::default();
                    let (mut dk, mut sk, mut enc) = (None, None, false);
                    let col = self.column_def(
                        column_def,
                        current.next_column_id,
                        &mut cons,
                        &mut dk,
                        &mut sk,
                        &mut enc,
                    )?;
                    if col.identity.is_some() {
                        return Err(NodeError::unsupported(
                            "ALTER TABLE ADD COLUMN with IDENTITY",
                        ));
                    }
                    if dk.is_some() || sk.is_some() {
                        return Err(NodeError::unsupported(
                            "ALTER TABLE ADD COLUMN with DISTKEY or SORTKEY",
                        ));
                    }
                    let has_rows = current.data.row_count() > 0;
                    if !col.nullable && col.default.is_none() && has_rows {
                        return Err(NodeError::invalid(
                            "23502",
                            format!("column \"{name}\" contains null values"),
                        ));
                    }
                    let needs_fill = col.default.is_some() && has_rows;
                    {
                        let t = self.txn_mut().txn.table_mut(table.id).expect("exists");
                        let mut col = col.clone();
                        if col.encoding == Encoding::Auto && !t.encode_auto {
                            col.encoding = col.ty.default_encoding();
                        }
                        t.columns.push(col);
                        t.next_column_id += 1;
                        t.version += 1;
                    }
                    self.txn_mut().txn.mark_ddl();
                    if needs_fill {
                        // Existing rows take the default: rewrite the table once.
                        let cols: Vec<String> = current
                            .columns
                            .iter()
                            .map(|c| format!("\"{}\"", c.name.replace('"', "\"\"")))
                            .collect();
                        let sql = format!(
                            "SELECT {}, CAST(({}) AS {}) FROM \"{}\".\"{}\"",
                            cols.join(", "),
                            col.default.as_deref().unwrap_or("NULL"),
                            col.ty.cast_name(),
                            current.schema.replace('"', "\"\""),
                            current.name.replace('"', "\"\"")
                        );
                        self.rewrite_table(table.id, Some(sql)).await?;
                    }
                }
                AlterTableOperation::DropColumn {
                    column_names,
                    if_exists,
                    ..
                } => {
                    for c in column_names {
                        let name = ident_name(c);
                        let state = self.txn_mut().txn.state().clone();
                        let cur = state.tables.get(&table.id).expect("exists");
                        if cur.column(&name).is_none() {
                            if *if_exists {
                                continue;
                            }
                            return Err(CatalogError::ColumnNotFound {
                                table: cur.name.clone(),
                                column: name,
                            }
                            .into());
                        }
                        if cur.distkey.as_deref() == Some(name.as_str()) {
                            return Err(NodeError::invalid(
                                "0A000",
                                format!("cannot drop distkey column \"{name}\""),
                            ));
                        }
                        if cur
                            .sortkey
                            .as_ref()
                            .is_some_and(|s| s.columns.contains(&name))
                        {
                            return Err(NodeError::invalid(
                                "0A000",
                                format!("cannot drop sortkey column \"{name}\""),
                            ));
                        }
                        if cur.columns.len() == 1 {
                            return Err(NodeError::invalid(
                                "0A000",
                                "cannot drop the last column of a table",
                            ));
                        }
                        let t = self.txn_mut().txn.table_mut(table.id).expect("exists");
                        t.columns.retain(|x| x.name != name);
                        t.version += 1;
                        self.txn_mut().txn.mark_ddl();
                    }
                }
                other => return Err(NodeError::unsupported(format!("ALTER TABLE {other}"))),
            }
        }
        Ok(StatementOutput::command("ALTER TABLE"))
    }
}

impl StatementOutput {
    /// CTAS reports `SELECT n` like Postgres.
    fn with_rows_from_ctas(self, rows: u64) -> Self {
        StatementOutput::Command {
            tag: "SELECT".into(),
            rows: Some(rows),
        }
    }
}
