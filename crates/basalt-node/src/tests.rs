//! Engine tests through the session API (the wire-level tests live in the root crate).

use datafusion::arrow::util::pretty::pretty_format_batches;

use crate::{Leader, LeaderConfig, Session, StatementOutput};

fn open(dir: &std::path::Path, nodes: u32, slices: u32) -> std::sync::Arc<Leader> {
    let mut c = LeaderConfig::new(dir.to_path_buf());
    c.nodes = nodes;
    c.slices_per_node = slices;
    Leader::open(c).unwrap()
}

async fn query(s: &mut Session, sql: &str) -> String {
    let mut outs = s.execute(sql).await;
    let out = outs
        .pop()
        .expect("one statement")
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let batches = out.collect().await.unwrap();
    pretty_format_batches(&batches).unwrap().to_string()
}

async fn exec(s: &mut Session, sql: &str) {
    for r in s.execute(sql).await {
        if let Err(e) = r {
            panic!("{sql}: {e} ({})", e.sqlstate());
        }
    }
}

async fn err(s: &mut Session, sql: &str) -> String {
    let mut outs = s.execute(sql).await;
    match outs.pop() {
        Some(Err(e)) => e.sqlstate().to_string(),
        Some(Ok(out)) => match out.collect().await {
            Err(e) => e.sqlstate().to_string(),
            Ok(b) => panic!("{sql}: expected an error, got {b:?}"),
        },
        None => panic!("{sql}: no result"),
    }
}

#[tokio::test]
async fn create_insert_select_across_styles() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 2, 2);
    let mut s = leader.session("basalt", "dev").unwrap();
    exec(
        &mut s,
        "create table k (id int, v varchar(10)) distkey(id) sortkey(id)",
    )
    .await;
    exec(
        &mut s,
        "create table e (id int, v varchar(10)) diststyle even",
    )
    .await;
    exec(
        &mut s,
        "create table a (id int, v varchar(10)) diststyle all",
    )
    .await;
    exec(&mut s, "create table u (id int, v varchar(10))").await;
    for t in ["k", "e", "a", "u"] {
        exec(
            &mut s,
            &format!("insert into {t} values (1, 'a'), (2, 'b'), (3, null), (4, 'd')"),
        )
        .await;
        let out = query(
            &mut s,
            &format!("select count(*), sum(id), count(v) from {t}"),
        )
        .await;
        let row: Vec<&str> = out
            .lines()
            .nth(3)
            .unwrap()
            .split('|')
            .map(|c| c.trim())
            .collect();
        assert_eq!(row[1..4], ["4", "10", "3"], "{t}: {out}");
    }
    // KEY rows live on several slices; ALL has one copy per node.
    let state = leader.catalog().snapshot();
    let k = state.table_by_name("public", "k").unwrap();
    assert!(k.data.slices.len() > 1, "{:?}", k.data.slices.keys());
    let a = state.table_by_name("public", "a").unwrap();
    assert_eq!(a.data.slices.len(), 2);
    assert_eq!(a.data.row_count(), 8);
}

#[tokio::test]
async fn delete_update_and_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 1, 3);
    let mut s = leader.session("basalt", "dev").unwrap();
    exec(
        &mut s,
        "create table t (id int not null, v decimal(10,2)) diststyle even",
    )
    .await;
    exec(
        &mut s,
        "insert into t select x, x * 1.5 from (values (1),(2),(3),(4),(5)) as v(x)",
    )
    .await;
    let mut outs = s.execute("delete from t where id > 3").await;
    match outs.pop().unwrap().unwrap() {
        StatementOutput::Command { tag, rows } => {
            assert_eq!((tag.as_str(), rows), ("DELETE", Some(2)))
        }
        other => panic!("{other:?}"),
    }
    let mut outs = s.execute("update t set v = v * 2 where id = 1").await;
    match outs.pop().unwrap().unwrap() {
        StatementOutput::Command { tag, rows } => {
            assert_eq!((tag.as_str(), rows), ("UPDATE", Some(1)))
        }
        other => panic!("{other:?}"),
    }
    let out = query(&mut s, "select id, v from t order by id").await;
    assert!(out.contains("| 1  | 3.00 |"), "{out}");
    assert!(out.contains("| 3  | 4.50 |"), "{out}");
    exec(&mut s, "begin; insert into t values (9, 9); rollback").await;
    assert!(
        query(&mut s, "select count(*) from t")
            .await
            .contains("| 3 ")
    );
    assert_eq!(err(&mut s, "insert into t values (null, 1)").await, "23502");
    assert_eq!(err(&mut s, "select 1/0").await, "22012");
    assert_eq!(err(&mut s, "select * from nope").await, "42P01");
    assert_eq!(err(&mut s, "select nope from t").await, "42703");
    assert_eq!(err(&mut s, "selec 1").await, "42601");
}

#[tokio::test]
async fn committed_data_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let leader = open(dir.path(), 2, 1);
        let mut s = leader.session("basalt", "dev").unwrap();
        exec(
            &mut s,
            "create table t (id bigint identity(1,1), name varchar(20)) distkey(name)",
        )
        .await;
        exec(&mut s, "insert into t (name) values ('x'), ('y'), ('z')").await;
        exec(&mut s, "begin; insert into t (name) values ('uncommitted')").await;
    }
    let leader = open(dir.path(), 2, 1);
    let mut s = leader.session("basalt", "dev").unwrap();
    let out = query(&mut s, "select id, name from t order by id").await;
    assert!(
        out.contains("| 1  | x    |") && out.contains("| 3  | z    |"),
        "{out}"
    );
    assert!(!out.contains("uncommitted"));
}

/// psql's `\dt`, `\d t`, `\l`, `\dn`, `\du` queries (psql 15, as captured from a real psql).
#[tokio::test]
async fn psql_catalog_queries() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 1, 2);
    let mut s = leader.session("basalt", "dev").unwrap();
    exec(&mut s, "create table hc_psql_t (id int not null, name varchar(20) default 'x', amount decimal(12,2))").await;
    let dt = query(&mut s, r#"SELECT n.nspname as "Schema",
  c.relname as "Name",
  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' THEN 'foreign table' WHEN 'p' THEN 'partitioned table' WHEN 'I' THEN 'partitioned index' END as "Type",
  pg_catalog.pg_get_userbyid(c.relowner) as "Owner"
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
WHERE c.relkind IN ('r','p','')
      AND n.nspname <> 'pg_catalog'
      AND n.nspname !~ '^pg_toast'
      AND n.nspname <> 'information_schema'
  AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY 1,2;"#).await;
    assert!(dt.contains("hc_psql_t"), "{dt}");
    let oid = query(
        &mut s,
        r#"SELECT c.oid,
  n.nspname,
  c.relname
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname OPERATOR(pg_catalog.~) '^(hc_psql_t)$' COLLATE pg_catalog.default
  AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY 2, 3;"#,
    )
    .await;
    let oid_value: String = oid
        .lines()
        .nth(3)
        .unwrap()
        .split('|')
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    let cols = query(&mut s, &format!(r#"SELECT a.attname,
  pg_catalog.format_type(a.atttypid, a.atttypmod),
  (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true)
   FROM pg_catalog.pg_attrdef d
   WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef),
  a.attnotnull,
  (SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t
   WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) AS attcollation,
  a.attidentity,
  a.attgenerated
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = '{oid_value}' AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum;"#)).await;
    for want in [
        "| id      | integer               |      | true       |",
        "| name    | character varying(20) | 'x'  | false      |",
        "| amount  | numeric(12,2)         |      | false      |",
    ] {
        assert!(cols.contains(want), "{want} in\n{cols}");
    }
    let l = query(
        &mut s,
        r#"SELECT d.datname as "Name",
       pg_catalog.pg_get_userbyid(d.datdba) as "Owner",
       pg_catalog.pg_encoding_to_char(d.encoding) as "Encoding",
       d.datcollate as "Collate",
       d.datctype as "Ctype",
       d.daticulocale as "ICU Locale",
       CASE d.datlocprovider WHEN 'c' THEN 'libc' WHEN 'i' THEN 'icu' END AS "Locale Provider",
       pg_catalog.array_to_string(d.datacl, E'\n') AS "Access privileges"
FROM pg_catalog.pg_database d
ORDER BY 1;"#,
    )
    .await;
    assert!(l.contains("dev"), "{l}");
    let dn = query(
        &mut s,
        r#"SELECT n.nspname AS "Name",
  pg_catalog.pg_get_userbyid(n.nspowner) AS "Owner"
FROM pg_catalog.pg_namespace n
WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
ORDER BY 1;"#,
    )
    .await;
    assert!(dn.contains("public"), "{dn}");
    let du = query(
        &mut s,
        r#"SELECT r.rolname, r.rolsuper, r.rolinherit,
  r.rolcreaterole, r.rolcreatedb, r.rolcanlogin,
  r.rolconnlimit, r.rolvaliduntil,
  ARRAY(SELECT b.rolname
        FROM pg_catalog.pg_auth_members m
        JOIN pg_catalog.pg_roles b ON (m.roleid = b.oid)
        WHERE m.member = r.oid) as memberof
, r.rolreplication
, r.rolbypassrls
FROM pg_catalog.pg_roles r
WHERE r.rolname !~ '^pg_'
ORDER BY 1;"#,
    )
    .await;
    assert!(du.contains("basalt"), "{du}");
    let v = query(
        &mut s,
        "select version(), current_schema(), current_database(), current_user",
    )
    .await;
    assert!(
        v.contains("PostgreSQL 15.0") && v.contains("public") && v.contains("dev"),
        "{v}"
    );
    let show = query(&mut s, "show transaction isolation level").await;
    assert!(show.contains("serializable"), "{show}");
}

/// What pgjdbc, sqlalchemy-redshift and BI tools read: primary keys through pg_index and
/// `_pg_expandarray`, Redshift's pg_attribute/pg_class columns, pg_user, pg_settings.
#[tokio::test]
async fn client_metadata_queries() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 1, 2);
    let mut s = leader.session("basalt", "dev").unwrap();
    exec(
        &mut s,
        "create table md_t (a int, b varchar(9) encode zstd, c int, primary key (c, a)) \
         distkey(b) compound sortkey(c, b)",
    )
    .await;
    exec(&mut s, "create table md_nopk (x int)").await;
    // pgjdbc's getPrimaryKeys.
    let pks = query(
        &mut s,
        "SELECT result.TABLE_SCHEM, result.TABLE_NAME, result.COLUMN_NAME, result.KEY_SEQ, \
         result.PK_NAME FROM (SELECT NULL AS TABLE_CAT, n.nspname AS TABLE_SCHEM, \
         ct.relname AS TABLE_NAME, a.attname AS COLUMN_NAME, \
         (information_schema._pg_expandarray(i.indkey)).n AS KEY_SEQ, ci.relname AS PK_NAME, \
         information_schema._pg_expandarray(i.indkey) AS KEYS, a.attnum AS A_ATTNUM \
         FROM pg_catalog.pg_class ct JOIN pg_catalog.pg_attribute a ON (ct.oid = a.attrelid) \
         JOIN pg_catalog.pg_namespace n ON (ct.relnamespace = n.oid) \
         JOIN pg_catalog.pg_index i ON ( a.attrelid = i.indrelid) \
         JOIN pg_catalog.pg_class ci ON (ci.oid = i.indexrelid) WHERE true \
         AND n.nspname = E'public' AND ct.relname LIKE E'md\\_%' AND i.indisprimary ) result \
         where result.A_ATTNUM = (result.KEYS).x \
         ORDER BY result.table_name, result.pk_name, result.key_seq",
    )
    .await;
    let expected = "\
+-------------+------------+-------------+---------+-----------+
| table_schem | table_name | column_name | key_seq | pk_name   |
+-------------+------------+-------------+---------+-----------+
| public      | md_t       | c           | 1       | md_t_pkey |
| public      | md_t       | a           | 2       | md_t_pkey |
+-------------+------------+-------------+---------+-----------+";
    assert_eq!(pks, expected);
    // sqlalchemy-redshift's column reflection.
    let cols = query(
        &mut s,
        "SELECT att.attname, format_encoding(att.attencodingtype::integer) AS encode, \
         format_type(att.atttypid, att.atttypmod) AS type, att.attisdistkey AS distkey, \
         att.attsortkeyord AS sortkey, att.attnotnull AS notnull \
         FROM pg_catalog.pg_attribute att JOIN pg_catalog.pg_class c ON c.oid = att.attrelid \
         WHERE c.relname = 'md_t' AND att.attnum > 0 ORDER BY att.attnum",
    )
    .await;
    let expected = "\
+---------+--------+----------------------+---------+---------+---------+
| attname | encode | type                 | distkey | sortkey | notnull |
+---------+--------+----------------------+---------+---------+---------+
| a       | az64   | integer              | false   | 0       | true    |
| b       | zstd   | character varying(9) | true    | 2       | false   |
| c       | none   | integer              | false   | 1       | true    |
+---------+--------+----------------------+---------+---------+---------+";
    assert_eq!(cols, expected);
    let tables = query(
        &mut s,
        "SELECT c.relname, CASE c.reldiststyle WHEN 0 THEN 'EVEN' WHEN 1 THEN 'KEY' \
         WHEN 8 THEN 'ALL' END AS diststyle, u.usename \
         FROM pg_catalog.pg_class c JOIN pg_user u ON u.usesysid = c.relowner \
         WHERE c.relname LIKE 'md%' AND c.relkind = 'r' ORDER BY 1",
    )
    .await;
    assert!(
        tables.contains("| md_t    | KEY       | basalt  |"),
        "{tables}"
    );
    // pgjdbc's getTypeInfo (a correlated, non-aggregate scalar subquery in WHERE) and its
    // array check (a regproc literal).
    let types = query(
        &mut s,
        "SELECT count(*) > 10 AS ok FROM pg_catalog.pg_type t \
         JOIN pg_catalog.pg_namespace n ON (t.typnamespace = n.oid) \
         WHERE n.nspname != 'pg_toast' AND (t.typrelid = 0 OR \
         (SELECT c.relkind = 'c' FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid))",
    )
    .await;
    assert!(types.contains("true"), "{types}");
    let arrays = query(
        &mut s,
        "SELECT typname FROM pg_catalog.pg_type \
         WHERE typinput = 'pg_catalog.array_in'::regproc AND typname = '_int4'",
    )
    .await;
    assert!(arrays.contains("_int4"), "{arrays}");
    let keys = query(
        &mut s,
        "SELECT setting FROM pg_catalog.pg_settings WHERE name='max_index_keys'",
    )
    .await;
    assert!(keys.contains("32"), "{keys}");
    // pgjdbc's getIndexInfo: int2vector subscripts from 0, pg_get_indexdef column names.
    let idx = query(&mut s, r#"SELECT     tmp.TABLE_CAT,     tmp.TABLE_SCHEM,     tmp.TABLE_NAME,     tmp.NON_UNIQUE,     tmp.INDEX_QUALIFIER,     tmp.INDEX_NAME,     tmp.TYPE,     tmp.ORDINAL_POSITION,     trim(both '"' from pg_catalog.pg_get_indexdef(tmp.CI_OID, tmp.ORDINAL_POSITION, false)) AS COLUMN_NAME,   CASE tmp.AM_NAME     WHEN 'btree' THEN CASE tmp.I_INDOPTION[tmp.ORDINAL_POSITION - 1] & 1::smallint       WHEN 1 THEN 'D'       ELSE 'A'     END     ELSE NULL   END AS ASC_OR_DESC,     tmp.CARDINALITY,     tmp.PAGES,     tmp.FILTER_CONDITION FROM (SELECT NULL AS TABLE_CAT, n.nspname AS TABLE_SCHEM,   ct.relname AS TABLE_NAME, NOT i.indisunique AS NON_UNIQUE,   NULL AS INDEX_QUALIFIER, ci.relname AS INDEX_NAME,   CASE i.indisclustered     WHEN true THEN 1    ELSE CASE am.amname       WHEN 'hash' THEN 2      ELSE 3    END   END AS TYPE,   (information_schema._pg_expandarray(i.indkey)).n AS ORDINAL_POSITION,   ci.reltuples AS CARDINALITY,   ci.relpages AS PAGES,   pg_catalog.pg_get_expr(i.indpred, i.indrelid) AS FILTER_CONDITION,   ci.oid AS CI_OID,   i.indoption AS I_INDOPTION,   am.amname AS AM_NAME FROM pg_catalog.pg_class ct   JOIN pg_catalog.pg_namespace n ON (ct.relnamespace = n.oid)   JOIN pg_catalog.pg_index i ON (ct.oid = i.indrelid)   JOIN pg_catalog.pg_class ci ON (ci.oid = i.indexrelid)   JOIN pg_catalog.pg_am am ON (ci.relam = am.oid) WHERE true  AND n.nspname = 'public' AND ct.relname = 'md_t') AS tmp ORDER BY NON_UNIQUE, TYPE, INDEX_NAME, ORDINAL_POSITION"#).await;
    assert!(
        idx.contains("| md_t_pkey  | 3    | 1                | c           | A  ")
            && idx.contains("| md_t_pkey  | 3    | 2                | a           | A  "),
        "{idx}"
    );
    // psqlODBC's SQLPrimaryKeys: attributes of the index relation, `indisprimary = 't'`.
    let odbc = query(&mut s, r#"select ta.attname, ia.attnum, ic.relname, n.nspname, tc.relname from pg_catalog.pg_attribute ta, pg_catalog.pg_attribute ia, pg_catalog.pg_class tc, pg_catalog.pg_index i, pg_catalog.pg_namespace n, pg_catalog.pg_class ic where tc.relname = 'md_t' AND n.nspname = 'public' AND tc.oid = i.indrelid AND n.oid = tc.relnamespace AND i.indisprimary = 't' AND ia.attrelid = i.indexrelid AND ta.attrelid = i.indrelid AND ta.attnum = i.indkey[ia.attnum-1] AND (NOT ta.attisdropped) AND (NOT ia.attisdropped) AND ic.oid = i.indexrelid order by ia.attnum"#).await;
    assert!(
        odbc.contains("| c       | 1      | md_t_pkey |")
            && odbc.contains("| a       | 2      | md_t_pkey |"),
        "{odbc}"
    );
    // pgjdbc's getImportedKeys plans and runs: pg_constraint's int2[] subscripts from 1.
    let fks = query(&mut s, r#"SELECT NULL::text AS PKTABLE_CAT, pkn.nspname AS PKTABLE_SCHEM, pkc.relname AS PKTABLE_NAME, pka.attname AS PKCOLUMN_NAME, NULL::text AS FKTABLE_CAT, fkn.nspname AS FKTABLE_SCHEM, fkc.relname AS FKTABLE_NAME, fka.attname AS FKCOLUMN_NAME, pos.n AS KEY_SEQ, CASE con.confupdtype  WHEN 'c' THEN 0 WHEN 'n' THEN 2 WHEN 'd' THEN 4 WHEN 'r' THEN 1 WHEN 'p' THEN 1 WHEN 'a' THEN 3 ELSE NULL END AS UPDATE_RULE, CASE con.confdeltype  WHEN 'c' THEN 0 WHEN 'n' THEN 2 WHEN 'd' THEN 4 WHEN 'r' THEN 1 WHEN 'p' THEN 1 WHEN 'a' THEN 3 ELSE NULL END AS DELETE_RULE, con.conname AS FK_NAME, pkic.relname AS PK_NAME, CASE  WHEN con.condeferrable AND con.condeferred THEN 5 WHEN con.condeferrable THEN 6 ELSE 7 END AS DEFERRABILITY  FROM  pg_catalog.pg_namespace pkn, pg_catalog.pg_class pkc, pg_catalog.pg_attribute pka,  pg_catalog.pg_namespace fkn, pg_catalog.pg_class fkc, pg_catalog.pg_attribute fka,  pg_catalog.pg_constraint con,  pg_catalog.generate_series(1, 32) pos(n),  pg_catalog.pg_class pkic WHERE pkn.oid = pkc.relnamespace AND pkc.oid = pka.attrelid AND pka.attnum = con.confkey[pos.n] AND con.confrelid = pkc.oid  AND fkn.oid = fkc.relnamespace AND fkc.oid = fka.attrelid AND fka.attnum = con.conkey[pos.n] AND con.conrelid = fkc.oid  AND con.contype = 'f' AND (pkic.relkind = 'i' OR pkic.relkind = 'I') AND pkic.oid = con.conindid  AND fkn.nspname = 'public' AND fkc.relname = 'md_t' ORDER BY pkn.nspname,pkc.relname, con.conname,pos.n"#).await;
    assert!(!fks.contains("md_t"), "no foreign keys: {fks}");
    let svv = query(
        &mut s,
        "SELECT table_schema, table_name, table_type FROM svv_tables \
         WHERE table_name LIKE 'md%' ORDER BY 2",
    )
    .await;
    assert!(
        svv.contains("| public       | md_nopk    | BASE TABLE |")
            && svv.contains("| public       | md_t       | BASE TABLE |"),
        "{svv}"
    );
    let regtype = query(
        &mut s,
        "SELECT to_regtype('int4') AS a, to_regtype('hstore') IS NULL AS b",
    )
    .await;
    assert!(regtype.contains("| 23 | true |"), "{regtype}");
    // A temporary table is listed once, in the session's temporary schema.
    exec(&mut s, "create temp table md_tmp (a int)").await;
    let temp = query(
        &mut s,
        "SELECT n.nspname FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 'md_tmp'",
    )
    .await;
    assert_eq!(temp.matches("pg_temp_").count(), 1, "{temp}");
    assert!(!temp.contains("public"), "{temp}");
}

#[tokio::test]
async fn redshift_functions_through_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 2, 2);
    let mut s = leader.session("basalt", "dev").unwrap();
    exec(
        &mut s,
        "create table r (id int, d date, j varchar(100)) distkey(id)",
    )
    .await;
    exec(&mut s, r#"insert into r values (1, '2024-01-31', '{"a": {"b": 7}}'), (2, '2024-02-29', null), (3, null, '[]')"#).await;
    let out = query(&mut s, "select top 2 id, dateadd(month, 1, d) as nd, datediff(day, '2024-01-01', d) as dd, nvl(json_extract_path_text(j, 'a', 'b'), 'none') as jb from r order by id").await;
    assert!(
        out.contains("2024-02-29T00:00:00") && out.contains("| 30 ") && out.contains("| 7 "),
        "{out}"
    );
    assert!(!out.contains("| 3 "), "TOP 2: {out}");
    let out = query(&mut s, "select listagg(id, ',') within group (order by id desc) as l, median(id) as m, approximate count(distinct id) as c from r").await;
    assert!(out.contains("3,2,1") && out.contains("| 3 |"), "{out}");
    let out = query(
        &mut s,
        "select decode(id, 1, 'one', 2, 'two', 'many') as x from r order by id",
    )
    .await;
    assert!(out.contains("one") && out.contains("many"), "{out}");
    let out = query(
        &mut s,
        "select getdate() > '2020-01-01'::timestamp as a, sysdate > '2020-01-01'::timestamp as b",
    )
    .await;
    assert!(out.contains("| true | true |"), "{out}");
}

/// Regressions found in review: relative data directories, DELETE without WHERE, DEFAULT
/// VALUES, and a transaction's snapshot surviving a concurrent rewrite of its table.
#[tokio::test]
async fn review_regressions() {
    let rel = format!("target/reldir-test-{}", std::process::id());
    let _ = std::fs::remove_dir_all(&rel);
    let mut c = LeaderConfig::new(std::path::PathBuf::from(&rel));
    c.slices_per_node = 2;
    let leader = Leader::open(c).unwrap();
    let mut a = leader.session("basalt", "dev").unwrap();
    let mut b = leader.session("basalt", "dev").unwrap();
    exec(
        &mut a,
        "create table t (id int default 7, v int) diststyle even",
    )
    .await;
    exec(&mut a, "insert into t default values").await;
    exec(&mut a, "insert into t values (1, 1), (2, 2)").await;
    assert!(
        query(&mut a, "select count(*) from t where id = 7")
            .await
            .contains("| 1 ")
    );
    exec(&mut a, "begin").await;
    assert!(
        query(&mut a, "select count(*) from t")
            .await
            .contains("| 3 ")
    );
    // Another session rewrites and commits; A keeps reading its snapshot.
    let mut outs = b.execute("delete from t").await;
    match outs.pop().unwrap().unwrap() {
        StatementOutput::Command { rows, .. } => assert_eq!(rows, Some(3)),
        other => panic!("{other:?}"),
    }
    assert!(
        query(&mut b, "select count(*) from t")
            .await
            .contains("| 0 ")
    );
    assert!(
        query(&mut a, "select count(*) from t")
            .await
            .contains("| 3 ")
    );
    exec(&mut a, "commit").await;
    assert!(
        query(&mut a, "select count(*) from t")
            .await
            .contains("| 0 ")
    );
    drop((a, b, leader));
    let _ = std::fs::remove_dir_all(&rel);
}

/// Segment files on disk for `table` (`data/node-<n>/slice-<s>/t<id>/*`).
fn segment_files(dir: &std::path::Path, table: basalt_catalog::TableId) -> usize {
    let mut n = 0;
    for node in std::fs::read_dir(dir.join("data")).unwrap().flatten() {
        for slice in std::fs::read_dir(node.path()).unwrap().flatten() {
            if let Ok(files) = std::fs::read_dir(slice.path().join(format!("t{}", table.0))) {
                n += files.count();
            }
        }
    }
    n
}

/// Closing a session (and, failing that, dropping it) rolls back its transaction and drops
/// its temporary tables with their files, committed; other sessions' tables stay.
#[tokio::test]
async fn session_end_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 2, 2);
    let mut a = leader.session("basalt", "dev").unwrap();
    let mut b = leader.session("basalt", "dev").unwrap();
    exec(&mut a, "create table kept (x int) diststyle even").await;
    exec(&mut a, "create temp table t (x int)").await;
    exec(&mut a, "create table #t2 (x int)").await;
    exec(&mut a, "insert into t values (1), (2), (3), (4)").await;
    exec(&mut a, "insert into #t2 values (1), (2)").await;
    exec(&mut a, "select 1 as x into #t3").await;
    exec(&mut b, "create temp table t (x int)").await;
    exec(&mut b, "insert into t values (5)").await;
    // An open transaction with rows in a permanent table, and an open cursor.
    exec(&mut a, "begin").await;
    exec(&mut a, "insert into kept values (1), (2), (3), (4)").await;
    exec(&mut a, "declare c cursor for select * from kept").await;

    let state = leader.catalog().snapshot();
    let temp = |schema: &str, name: &str| {
        let names: Vec<String> = state.tables.values().map(|t| t.qualified_name()).collect();
        state
            .table_by_name(schema, name)
            .unwrap_or_else(|| panic!("{schema}.{name} not in {names:?}"))
            .id
    };
    let a_t = temp(&a.temp_schema(), "t");
    let a_t2 = temp(&a.temp_schema(), "t2");
    let a_t3 = temp(&a.temp_schema(), "t3");
    let b_t = temp(&b.temp_schema(), "t");
    let kept = temp("public", "kept");
    assert!(segment_files(dir.path(), a_t) > 0 && segment_files(dir.path(), a_t2) > 0);
    assert!(
        segment_files(dir.path(), kept) > 0,
        "the open transaction wrote files"
    );

    a.close().await.unwrap();
    a.close().await.unwrap(); // idempotent
    let state = leader.catalog().snapshot();
    assert!(!state.schemas.contains_key(&a.temp_schema()));
    assert!(
        state
            .tables
            .values()
            .all(|t| t.id != a_t && t.id != a_t2 && t.id != a_t3)
    );
    assert_eq!(segment_files(dir.path(), a_t), 0);
    assert_eq!(segment_files(dir.path(), a_t2), 0);
    assert_eq!(segment_files(dir.path(), kept), 0, "rolled back");
    assert!(
        query(&mut b, "select count(*) from kept")
            .await
            .contains("| 0 ")
    );
    // B's temporary table of the same name is untouched.
    assert!(
        query(&mut b, "select count(*) from t")
            .await
            .contains("| 1 ")
    );

    // A session dropped without close cleans up the same way.
    drop(b);
    let state = leader.catalog().snapshot();
    assert!(
        state.tables.values().all(|t| !t.temporary),
        "{:?}",
        state.schemas
    );
    assert!(state.schemas.keys().all(|s| !s.starts_with("pg_temp_")));
    assert_eq!(segment_files(dir.path(), b_t), 0);
}

/// `d <= DATE '...' - INTERVAL '...'` is a timestamp comparison in Postgres; the scan must
/// still prune on the date column (zone maps), not on a per-row cast.
#[tokio::test]
async fn date_minus_interval_filters_prune_on_the_date() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 1, 2);
    let mut s = leader.session("basalt", "dev").unwrap();
    exec(&mut s, "create table li (d date, q int) diststyle even").await;
    exec(
        &mut s,
        "insert into li values ('1998-09-02', 1), ('1998-09-03', 2), ('1995-01-01', 3)",
    )
    .await;
    let plan = query(
        &mut s,
        "explain verbose select q from li where d <= date '1998-12-01' - interval '90' day",
    )
    .await;
    assert!(
        plan.contains("zone_map_filters=[d <= Date32(\"1998-09-02\")"),
        "{plan}"
    );
    let rows = query(
        &mut s,
        "select q from li where d <= date '1998-12-01' - interval '90' day order by q",
    )
    .await;
    assert!(
        rows.contains("| 1 |") && rows.contains("| 3 |") && !rows.contains("| 2 |"),
        "{rows}"
    );
}

/// One value of a one-row, one-column result.
async fn scalar(s: &mut Session, sql: &str) -> String {
    let out = query(s, sql).await;
    out.lines()
        .nth(3)
        .and_then(|l| l.split('|').nth(1))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("{sql}: {out}"))
}

/// The committed segments of a table, per slice.
fn segments_of(
    leader: &Leader,
    name: &str,
) -> Vec<(basalt_catalog::SliceId, Vec<basalt_catalog::SegmentMeta>)> {
    let state = leader.catalog().snapshot();
    let t = state.table_by_name("public", name).expect("table");
    t.data.slices.iter().map(|(s, v)| (*s, v.clone())).collect()
}

/// VACUUM merges each slice into sort-key order (the sorted region), drops deleted rows and
/// their delete vectors, keeps every answer, and follows the threshold and variants.
#[tokio::test]
async fn vacuum_sorts_and_reclaims() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 2, 2);
    let mut s = leader.session("basalt", "dev").unwrap();
    exec(
        &mut s,
        "create table v (id int, pad varchar(20)) diststyle even sortkey(id)",
    )
    .await;
    // Three loads with overlapping key ranges: the unsorted region.
    for (lo, hi) in [(1, 400), (200, 700), (1, 100)] {
        exec(
            &mut s,
            &format!(
                "insert into v select {hi} + {lo} - value, 'x' from generate_series({lo}, {hi})"
            ),
        )
        .await;
    }
    exec(&mut s, "delete from v where id % 4 = 0").await;
    let before = (
        scalar(&mut s, "select count(*) from v").await,
        scalar(&mut s, "select sum(id) from v").await,
    );
    assert!(
        segments_of(&leader, "v")
            .iter()
            .flat_map(|(_, v)| v)
            .any(|g| g.deleted.is_some())
    );

    // DELETE ONLY reclaims without sorting.
    exec(&mut s, "vacuum delete only v to 100 percent").await;
    for (_, segs) in segments_of(&leader, "v") {
        assert!(segs.iter().all(|g| g.deleted.is_none() && !g.sorted_region));
    }
    exec(&mut s, "delete from v where id % 5 = 0").await;
    let after_delete = (
        scalar(&mut s, "select count(*) from v").await,
        scalar(&mut s, "select sum(id) from v").await,
    );

    // Plain VACUUM is FULL: each slice becomes one sorted run without deleted rows.
    exec(&mut s, "vacuum v").await;
    for (_, segs) in segments_of(&leader, "v") {
        assert!(
            segs.iter().all(|g| g.sorted_region && g.deleted.is_none()),
            "{segs:?}"
        );
    }
    assert_eq!(
        (
            scalar(&mut s, "select count(*) from v").await,
            scalar(&mut s, "select sum(id) from v").await,
        ),
        after_delete
    );
    assert_ne!(before, after_delete);
    // 100..=120 from the first load, 100 from the third, less multiples of 4 and 5.
    assert_eq!(
        scalar(
            &mut s,
            "select count(*) from v where id between 100 and 120"
        )
        .await,
        "12"
    );

    // A new load is unsorted again; at the 95% default a small one is left alone, TO 100
    // PERCENT sorts it.
    exec(&mut s, "insert into v values (3, 'late')").await;
    exec(&mut s, "vacuum sort only v").await;
    let unsorted = segments_of(&leader, "v")
        .iter()
        .flat_map(|(_, v)| v.clone())
        .filter(|g| !g.sorted_region)
        .count();
    assert_eq!(unsorted, 1);
    exec(&mut s, "vacuum sort only v to 100 percent").await;
    assert!(
        segments_of(&leader, "v")
            .iter()
            .flat_map(|(_, v)| v)
            .all(|g| g.sorted_region)
    );
    assert_eq!(
        scalar(&mut s, "select count(*) from v where id = 3").await,
        "3"
    );

    // The old files are gone once no statement reads the old versions.
    let live: std::collections::BTreeSet<String> = leader
        .catalog()
        .snapshot()
        .live_files()
        .into_iter()
        .map(|(_, _, f)| f)
        .collect();
    let id = leader
        .catalog()
        .snapshot()
        .table_by_name("public", "v")
        .unwrap()
        .id;
    assert_eq!(segment_files(dir.path(), id), live.len());

    // Every table, REINDEX and BOOST are accepted; errors are clear.
    exec(&mut s, "vacuum").await;
    exec(&mut s, "vacuum reindex v").await;
    exec(&mut s, "vacuum full v to 75 percent boost").await;
    assert_eq!(err(&mut s, "vacuum v to 101 percent").await, "22023");
    exec(&mut s, "begin").await;
    assert_eq!(err(&mut s, "vacuum v").await, "25001");
    exec(&mut s, "rollback").await;
    let n: u64 = after_delete.0.parse().unwrap();
    assert_eq!(
        scalar(&mut s, "select count(*) from v").await,
        (n + 1).to_string()
    );
}

/// ANALYZE records per-column statistics and resets stats_off; it skips a table with few
/// changed rows unless analyze_threshold_percent says otherwise; the scan reports the
/// statistics to the planner.
#[tokio::test]
async fn analyze_collects_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 2, 2);
    let mut s = leader.session("basalt", "dev").unwrap();
    exec(
        &mut s,
        "create table an (id int, grp varchar(5), amt decimal(8,2), d date) diststyle even",
    )
    .await;
    exec(
        &mut s,
        "insert into an select value, 'g' || (value % 7), value * 1.5, date '2024-01-01' + value::int \
         from generate_series(1, 1000)",
    )
    .await;
    exec(&mut s, "insert into an (id) values (null)").await;
    let table = |leader: &Leader| {
        leader
            .catalog()
            .snapshot()
            .table_by_name("public", "an")
            .unwrap()
            .clone()
    };
    assert_eq!(table(&leader).stats_off(), 100);
    exec(&mut s, "analyze verbose an predicate columns").await;
    let t = table(&leader);
    let stats = t.stats.clone().expect("analyzed");
    assert_eq!(stats.rows, 1001);
    assert_eq!(t.stats_off(), 0);
    let by_name = |n: &str| stats.columns[&t.column(n).unwrap().id].clone();
    let id = by_name("id");
    assert_eq!(
        (id.nulls, id.min.as_deref(), id.max.as_deref()),
        (1, Some("1"), Some("1000"))
    );
    assert!((990..=1010).contains(&id.distinct), "{id:?}");
    assert_eq!(by_name("grp").distinct, 7);
    assert_eq!(by_name("amt").max.as_deref(), Some("1500.00"));
    assert_eq!(by_name("d").min.as_deref(), Some("2024-01-02"));

    // 5% more rows: stale by 5, skipped at the 10% default, analyzed at 0.
    exec(
        &mut s,
        "insert into an select value, 'x', 0, null from generate_series(1, 50)",
    )
    .await;
    assert_eq!(table(&leader).stats_off(), 4);
    exec(&mut s, "analyze an").await;
    assert_eq!(table(&leader).stats.unwrap().rows, 1001);
    exec(&mut s, "set analyze_threshold_percent to 0").await;
    exec(&mut s, "analyze an (grp)").await;
    let t = table(&leader);
    assert_eq!(t.stats.as_ref().unwrap().rows, 1051);
    assert_eq!(
        t.stats.as_ref().unwrap().columns[&t.column("grp").unwrap().id].distinct,
        8
    );
    assert_eq!(t.stats_off(), 0);

    // The planner sees them.
    let plan = query(&mut s, "explain analyze select id from an where id > 10").await;
    assert!(plan.contains("SliceScanExec"), "{plan}");
    assert_eq!(err(&mut s, "analyze an (nope)").await, "42703");
    exec(&mut s, "analyze").await;

    // ANALYZE COMPRESSION: one row per column with the smallest encoding for a sample.
    let out = query(&mut s, "analyze compression an comprows 1000").await;
    assert!(
        out.contains("| Table | Column | Encoding | Est_reduction_pct |"),
        "{out}"
    );
    assert_eq!(out.matches("| an    |").count(), 4, "{out}");
    let reduction = |col: &str| -> f64 {
        let line = out
            .lines()
            .find(|l| l.contains(&format!("| {col} ")))
            .unwrap_or_else(|| panic!("{col}: {out}"));
        line.split('|').nth(4).unwrap().trim().parse().unwrap()
    };
    // Sequential ids and seven distinct strings compress well; the chosen encoding is never
    // larger than RAW.
    assert!(reduction("id") > 30.0, "{out}");
    assert!(reduction("grp") > 30.0, "{out}");
    assert!(reduction("amt") >= 0.0 && reduction("d") >= 0.0, "{out}");
    let one = query(&mut s, "analyze compression an (grp)").await;
    assert_eq!(one.matches("| an    |").count(), 1, "{one}");
    assert_eq!(err(&mut s, "analyze compression an (nope)").await, "42703");
}

/// SVV_TABLE_INFO measures rows (deleted ones until VACUUM), the unsorted share and
/// stats_off; STV_SLICES is the slice map; PG_TABLE_DEF lists columns with their keys.
#[tokio::test]
async fn storage_system_tables() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 2, 2);
    let mut s = leader.session("basalt", "dev").unwrap();
    exec(
        &mut s,
        "create table st (id int encode az64, name varchar(30) not null) distkey(id) compound sortkey(id, name)",
    )
    .await;
    exec(&mut s, "create table st_empty (a int)").await;
    exec(
        &mut s,
        "insert into st select value, 'n' from generate_series(1, 100)",
    )
    .await;
    exec(&mut s, "delete from st where id <= 20").await;
    let info = query(
        &mut s,
        "select \"table\", diststyle, sortkey1, sortkey_num, max_varchar, unsorted, stats_off, \
         tbl_rows, estimated_visible_rows from svv_table_info",
    )
    .await;
    assert!(
        info.contains("| st    | KEY(id)   | id       | 2           | 30          | 100.0    | 100.0     | 100.0    | 80.0                   |"),
        "{info}"
    );
    assert!(!info.contains("st_empty"), "{info}");
    exec(&mut s, "vacuum st to 100 percent").await;
    exec(&mut s, "analyze st").await;
    let info = query(
        &mut s,
        "select unsorted, stats_off, tbl_rows from svv_table_info where \"table\" = 'st'",
    )
    .await;
    assert!(
        info.contains("| 0.0      | 0.0       | 80.0     |"),
        "{info}"
    );
    assert_eq!(scalar(&mut s, "select count(*) from stv_slices").await, "4");
    assert_eq!(
        scalar(&mut s, "select count(distinct node) from stv_slices").await,
        "2"
    );
    let def = query(
        &mut s,
        "select \"column\", type, encoding, distkey, sortkey, notnull from pg_table_def \
         where tablename = 'st' order by \"column\"",
    )
    .await;
    assert!(def.contains("| id     | integer"), "{def}");
    assert!(def.contains("| true    | 1       | false   |"), "{def}");
    assert!(def.contains("| false   | 2       | true    |"), "{def}");
}

/// A truncated or corrupted segment file is a clear error naming the table, slice and file
/// (XX001), not a panic or a wrong answer; the session stays usable.
#[tokio::test]
async fn corrupt_segment_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 1, 1);
    let mut s = leader.session("basalt", "dev").unwrap();
    exec(
        &mut s,
        "create table cs (id int, v varchar(10)) diststyle even",
    )
    .await;
    exec(
        &mut s,
        "insert into cs select value, 'v' from generate_series(1, 5000)",
    )
    .await;
    let t = leader
        .catalog()
        .snapshot()
        .table_by_name("public", "cs")
        .unwrap()
        .clone();
    let (slice, segs) = t.data.slices.iter().next().unwrap();
    let path = dir
        .path()
        .join("data/node-0")
        .join(format!("slice-{}", slice.0))
        .join(format!("t{}", t.id.0))
        .join(&segs[0].file);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let mut outs = s.execute("select sum(id) from cs").await;
    let e = match outs.pop().unwrap() {
        Err(e) => e,
        Ok(out) => out.collect().await.unwrap_err(),
    };
    let msg = e.to_string();
    assert_eq!(e.sqlstate(), "XX001", "{msg}");
    assert!(msg.contains(&segs[0].file) && msg.contains("cs"), "{msg}");
    assert_eq!(scalar(&mut s, "select 1").await, "1");

    // One flipped bit that leaves the file readable is caught by the segment's checksum,
    // checked before the first read after a restart.
    let mut flipped = bytes.clone();
    let at = flipped.len() / 3;
    flipped[at] ^= 0x10;
    std::fs::write(&path, &flipped).unwrap();
    drop(s);
    drop(leader);
    let leader = open(dir.path(), 1, 1);
    let mut s = leader.session("basalt", "dev").unwrap();
    assert_eq!(err(&mut s, "select count(v) from cs").await, "XX001");
    let mut outs = s.execute("select sum(id) from cs").await;
    let e = match outs.pop().unwrap() {
        Err(e) => e,
        Ok(out) => out.collect().await.unwrap_err(),
    };
    assert!(e.to_string().contains("checksum mismatch"), "{e}");
    assert!(e.to_string().contains(&segs[0].file), "{e}");
    // The intact file reads again.
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(scalar(&mut s, "select sum(id) from cs").await, "12502500");
}

/// An ENCODE AUTO table takes each column's encoding from its first load (the sort key's
/// stays); a table with declared encodings keeps them.
#[tokio::test]
async fn encode_auto_chooses_on_first_load() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 1, 2);
    let mut s = leader.session("basalt", "dev").unwrap();
    exec(
        &mut s,
        "create table ea (k int, grp varchar(10), n bigint) sortkey(k)",
    )
    .await;
    exec(
        &mut s,
        "create table ed (grp varchar(10) encode raw, n bigint encode raw)",
    )
    .await;
    let encodings = |leader: &Leader, name: &str| -> Vec<basalt_catalog::Encoding> {
        leader
            .catalog()
            .snapshot()
            .table_by_name("public", name)
            .unwrap()
            .columns
            .iter()
            .map(|c| c.encoding)
            .collect()
    };
    let before = encodings(&leader, "ea");
    let load = "select value, 'g' || (value % 3), value * 1000 from generate_series(1, 20000)";
    exec(&mut s, &format!("insert into ea {load}")).await;
    exec(
        &mut s,
        "insert into ed select 'g' || (value % 3), value from generate_series(1, 100)",
    )
    .await;
    let after = encodings(&leader, "ea");
    assert_eq!(after[0], before[0], "sort key column keeps its encoding");
    assert_ne!(after, before, "{after:?}");
    assert_eq!(
        encodings(&leader, "ed"),
        vec![basalt_catalog::Encoding::Raw, basalt_catalog::Encoding::Raw]
    );
    assert_eq!(
        scalar(&mut s, "select count(distinct grp) from ea").await,
        "3"
    );
    assert_eq!(
        scalar(&mut s, "select sum(n) from ea").await,
        "200010000000"
    );
    // A second load keeps the first load's choice.
    exec(&mut s, "insert into ea values (0, 'zzzzzzzzzz', 1)").await;
    assert_eq!(encodings(&leader, "ea"), after);
}

/// Every query is logged: STL_QUERY has its text, STL_SCAN one row per slice with the rows the
/// scan returned and the blocks its zone maps let it skip, SVL_QUERY_SUMMARY one row per step;
/// EXPLAIN ANALYZE shows the same counters. A sorted table skips blocks an unsorted one reads.
#[tokio::test]
async fn scans_are_logged_with_blocks_read_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 2, 2);
    let mut s = leader.session("basalt", "dev").unwrap();
    assert_eq!(scalar(&mut s, "select pg_last_query_id()").await, "-1");
    exec(
        &mut s,
        "create table zs (a int, b int) diststyle even sortkey(a)",
    )
    .await;
    exec(&mut s, "create table zu (a int, b int) diststyle even").await;
    // 4 slices x 32,768 rows: 2 blocks per slice.
    exec(
        &mut s,
        "insert into zs select value, value % 7 from generate_series(1, 131072)",
    )
    .await;
    exec(&mut s, "insert into zu select a, b from zs order by b, a").await;

    let scan = "select count(*) from zs where a between 1000 and 2000";
    assert_eq!(scalar(&mut s, scan).await, "1001");
    let q = scalar(&mut s, "select pg_last_query_id()").await;
    let text = scalar(
        &mut s,
        &format!("select querytxt from stl_query where query = {q}"),
    )
    .await;
    assert_eq!(text, scan);
    let counts = query(
        &mut s,
        &format!(
            "select count(*) as slices, sum(rows) as rows, sum(blocks_read) as r, \
             sum(blocks_skipped) as k, min(is_rrscan) as rr, min(perm_table_name) as t \
             from stl_scan where query = {q}"
        ),
    )
    .await;
    // Each slice holds an even share of 1..131072, sorted: only the blocks holding
    // 1000..2000 are read.
    assert!(
        counts.contains("| 4      | 1001 | 4 | 4 | t  | zs |"),
        "{counts}"
    );
    let summary = query(
        &mut s,
        &format!(
            "select label, rows, is_rrscan from svl_query_summary where query = {q} \
             and label like 'scan%'"
        ),
    )
    .await;
    assert!(summary.contains("scan   tbl="), "{summary}");
    assert!(summary.contains("name=zs"), "{summary}");

    // The same filter on a copy sorted by another column reads every block.
    let unsorted = "select count(*) from zu where a between 1000 and 2000";
    assert_eq!(scalar(&mut s, unsorted).await, "1001");
    let q = scalar(&mut s, "select pg_last_query_id()").await;
    let counts = query(
        &mut s,
        &format!(
            "select sum(blocks_read) as r, sum(blocks_skipped) as k \
             from stl_scan where query = {q}"
        ),
    )
    .await;
    assert!(counts.contains("| 8 | 0 |"), "{counts}");

    // STL_SCAN's tbl is the table's oid, as in SVV_TABLE_INFO and STV_BLOCKLIST.
    let joined = query(
        &mut s,
        &format!(
            "select count(*) as n from stl_scan s join svv_table_info i on s.tbl = i.table_id \
             where s.query = {q} and i.\"table\" = 'zu'"
        ),
    )
    .await;
    assert!(joined.contains("| 4 |"), "{joined}");
    // The blocks and their zone maps: 2 per slice and column, column a spanning 1..131072.
    let blocks = query(
        &mut s,
        "select count(*) as n, sum(num_values) as v, min(minvalue) as lo, max(maxvalue) as hi, \
         max(blocknum) as last from stv_blocklist b join svv_table_info i on b.tbl = i.table_id \
         where i.\"table\" = 'zs' and col = 0",
    )
    .await;
    assert!(
        blocks.contains("| 8 | 131072 | 1  | 131072 | 1    |"),
        "{blocks}"
    );
    assert_eq!(
        scalar(
            &mut s,
            "select count(*) from svv_diskusage where name = 'zs'"
        )
        .await,
        "16"
    );

    let plan = query(&mut s, &format!("explain analyze {scan}")).await;
    assert!(
        plan.contains("blocks_read=4") && plan.contains("blocks_skipped=4"),
        "{plan}"
    );
}

/// Deleted rows past the threshold are reclaimed in the background (VACUUM DELETE ONLY),
/// recorded in SYS_VACUUM_HISTORY as automatic; SVV_VACUUM_PROGRESS shows the last VACUUM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_vacuum_delete_and_vacuum_history() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = LeaderConfig::new(dir.path().to_path_buf());
    c.nodes = 2;
    c.slices_per_node = 1;
    c.auto_vacuum_interval = Some(std::time::Duration::from_millis(100));
    let leader = Leader::open(c).unwrap();
    let mut s = leader.session("basalt", "dev").unwrap();
    exec(&mut s, "create table av (a int) diststyle even sortkey(a)").await;
    exec(
        &mut s,
        "insert into av select value from generate_series(1, 1000)",
    )
    .await;
    // 1% deleted stays under the threshold: nothing to do.
    exec(&mut s, "delete from av where a <= 10").await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(
        scalar(&mut s, "select count(*) from sys_vacuum_history").await,
        "0"
    );
    exec(&mut s, "delete from av where a <= 500").await;
    let mut stored = String::new();
    for _ in 0..100 {
        stored = scalar(
            &mut s,
            "select tbl_rows from svv_table_info where \"table\" = 'av'",
        )
        .await;
        if stored == "500.0" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(stored, "500.0", "the background vacuum did not run");
    assert_eq!(scalar(&mut s, "select count(*) from av").await, "500");
    let history = query(
        &mut s,
        "select table_name, vacuum_type, is_automatic, status, rows_before_vacuum, \
         reclaimed_rows from sys_vacuum_history",
    )
    .await;
    assert!(
        history.contains("| av         | DELETE ONLY | true         | Complete | 1000               | 500            |"),
        "{history}"
    );
    let progress = query(&mut s, "select * from svv_vacuum_progress").await;
    assert!(
        progress.contains("| av         | Complete | 0m 0s "),
        "{progress}"
    );

    exec(
        &mut s,
        "insert into av select value from generate_series(2000, 2100)",
    )
    .await;
    exec(&mut s, "vacuum av to 100 percent").await;
    let last = query(
        &mut s,
        "select vacuum_type, is_automatic, sortedrows from sys_vacuum_history \
         order by start_time desc limit 1",
    )
    .await;
    assert!(
        last.contains("| FULL        | false        | 601        |"),
        "{last}"
    );
}

/// A disk that fills up during a write aborts that statement with 53100: the table keeps its
/// committed rows, no partial or orphan segment file is left, and the session goes on.
#[tokio::test]
async fn disk_full_aborts_the_write_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 2, 2);
    let mut s = leader.session("basalt", "dev").unwrap();
    exec(
        &mut s,
        "create table full_t (a int, t varchar(64)) diststyle even",
    )
    .await;
    exec(
        &mut s,
        "insert into full_t select value, md5(value::varchar) from generate_series(1, 1000)",
    )
    .await;
    let id = leader
        .catalog()
        .snapshot()
        .table_by_name("public", "full_t")
        .unwrap()
        .id;
    let files = segment_files(dir.path(), id);
    leader.compute().limit_writes(Some(20_000));
    let big =
        "insert into full_t select value, md5(value::varchar) from generate_series(1, 200000)";
    assert_eq!(err(&mut s, big).await, "53100");
    leader.compute().limit_writes(Some(100));
    assert_eq!(err(&mut s, "update full_t set a = a + 1").await, "53100");
    leader.compute().limit_writes(None);
    assert_eq!(scalar(&mut s, "select count(*) from full_t").await, "1000");
    assert_eq!(scalar(&mut s, "select sum(a) from full_t").await, "500500");
    assert_eq!(
        segment_files(dir.path(), id),
        files,
        "partial files left behind"
    );
    exec(&mut s, big).await;
    assert_eq!(
        scalar(&mut s, "select count(*) from full_t").await,
        "201000"
    );
}

/// CTAS and a COPY into an empty table leave the table analyzed (stats_off 0), as Redshift's
/// automatic statistics do; an INSERT does not.
#[tokio::test]
async fn loads_into_empty_tables_are_analyzed() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 1, 2);
    let mut s = leader.session("basalt", "dev").unwrap();
    exec(&mut s, "create table src (a int)").await;
    exec(
        &mut s,
        "insert into src select value from generate_series(1, 100)",
    )
    .await;
    exec(&mut s, "create table made as select a, a * 2 as b from src").await;
    exec(&mut s, "create table copied (a int)").await;
    let out = s
        .execute("copy copied from stdin")
        .await
        .pop()
        .unwrap()
        .unwrap();
    assert!(matches!(out, StatementOutput::CopyIn { .. }));
    s.copy_data(b"1\n2\n3\n").await.unwrap();
    assert_eq!(s.copy_done().await.unwrap(), 3);
    let info = query(
        &mut s,
        "select \"table\", stats_off from svv_table_info order by \"table\"",
    )
    .await;
    assert!(info.contains("| copied | 0.0       |"), "{info}");
    assert!(info.contains("| made   | 0.0       |"), "{info}");
    assert!(info.contains("| src    | 100.0     |"), "{info}");
}

/// Writes that commit while a VACUUM runs are kept: rows inserted meanwhile are added to the
/// vacuumed version, and a DELETE of rows the VACUUM rewrote makes it start over, not fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vacuum_keeps_concurrent_writes() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 1, 2);
    let mut a = leader.session("basalt", "dev").unwrap();
    let mut b = leader.session("basalt", "dev").unwrap();
    exec(
        &mut a,
        "create table vc (k int, v int) diststyle even sortkey(k)",
    )
    .await;
    for i in 0..4 {
        exec(
            &mut a,
            &format!(
                "insert into vc select value, {i} from generate_series({}, {})",
                i * 50_000 + 1,
                (i + 1) * 50_000
            ),
        )
        .await;
    }
    exec(&mut a, "delete from vc where k % 10 = 0").await;
    let vacuum = async {
        exec(&mut a, "vacuum vc to 100 percent").await;
        a
    };
    let writes = async {
        for i in 0..20 {
            exec(
                &mut b,
                &format!("insert into vc values ({}, 9)", 1_000_000 + i),
            )
            .await;
            if i == 10 {
                exec(&mut b, "delete from vc where k = 3").await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        b
    };
    let (mut a, _b) = tokio::join!(vacuum, writes);
    assert_eq!(scalar(&mut a, "select count(*) from vc").await, "180019");
    assert_eq!(
        scalar(&mut a, "select count(*) from vc where v = 9").await,
        "20"
    );
    assert_eq!(
        scalar(&mut a, "select count(*) from vc where k = 3").await,
        "0"
    );
    let status = scalar(
        &mut a,
        "select status from sys_vacuum_history order by end_time desc limit 1",
    )
    .await;
    assert_eq!(status, "Complete");
}

/// ANALYZE PREDICATE COLUMNS measures the columns queries used in WHERE, JOIN and GROUP BY,
/// plus the sort key; before any such query, every column.
#[tokio::test]
async fn analyze_predicate_columns() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 1, 2);
    let mut s = leader.session("basalt", "dev").unwrap();
    exec(
        &mut s,
        "create table pc (a int, b int, c int, d int, e int) sortkey(d)",
    )
    .await;
    exec(&mut s, "create table other (x int)").await;
    exec(
        &mut s,
        "insert into pc select value, value % 3, value % 5, value + 0, value + 1 from generate_series(1, 100)",
    )
    .await;
    exec(&mut s, "insert into other values (1), (2)").await;
    let analyzed = |leader: &Leader| -> Vec<String> {
        let state = leader.catalog().snapshot();
        let t = state.table_by_name("public", "pc").unwrap();
        let stats = t.stats.as_ref().expect("analyzed");
        t.columns
            .iter()
            .filter(|c| stats.columns.contains_key(&c.id))
            .map(|c| c.name.clone())
            .collect()
    };
    exec(&mut s, "analyze pc predicate columns").await;
    assert_eq!(analyzed(&leader), ["a", "b", "c", "d", "e"]);
    exec(&mut s, "drop table pc").await;
    exec(
        &mut s,
        "create table pc (a int, b int, c int, d int, e int) sortkey(d)",
    )
    .await;
    exec(&mut s, "insert into pc select value, value + 1, value + 2, value + 3, value + 4 from generate_series(1, 10)").await;
    query(&mut s, "select count(*) from pc where b > 3").await;
    query(
        &mut s,
        "select p.c, count(*) from pc p join other o on p.a = o.x group by p.c",
    )
    .await;
    exec(&mut s, "analyze pc predicate columns").await;
    assert_eq!(analyzed(&leader), ["a", "b", "c", "d"]);
}

/// An INTERLEAVED sort key is stored in z-order, so a filter on either key column skips
/// blocks; REINDEX re-sorts slices VACUUM would leave alone.
#[tokio::test]
async fn interleaved_keys_prune_on_every_column() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 1, 1);
    let mut s = leader.session("basalt", "dev").unwrap();
    exec(
        &mut s,
        "create table il (a int, b int) interleaved sortkey(a, b)",
    )
    .await;
    exec(
        &mut s,
        "create table cl (a int, b int) compound sortkey(a, b)",
    )
    .await;
    // A 256 x 256 grid: 65,536 rows, 4 blocks.
    for t in ["il", "cl"] {
        exec(
            &mut s,
            &format!(
                "insert into {t} select value / 256, value % 256 from generate_series(0, 65535)"
            ),
        )
        .await;
    }
    async fn blocks(s: &mut Session, sql: &str) -> String {
        assert_eq!(scalar(s, sql).await, "256");
        let q = scalar(s, "select pg_last_query_id()").await;
        query(
            s,
            &format!("select sum(blocks_read) as r, sum(blocks_skipped) as k from stl_scan where query = {q}"),
        )
        .await
    }
    // z-order: the first bit of a and of b split the grid into 4 quadrant blocks.
    let il_a = blocks(&mut s, "select count(*) from il where a = 7").await;
    assert!(il_a.contains("| 2 | 2 |"), "{il_a}");
    let il_b = blocks(&mut s, "select count(*) from il where b = 7").await;
    assert!(il_b.contains("| 2 | 2 |"), "{il_b}");
    // Compound order prunes on the leading column only.
    let cl_b = blocks(&mut s, "select count(*) from cl where b = 7").await;
    assert!(cl_b.contains("| 4 | 0 |"), "{cl_b}");

    exec(&mut s, "vacuum il").await;
    let files = |leader: &Leader| -> Vec<String> {
        segments_of(leader, "il")
            .into_iter()
            .flat_map(|(_, segs)| segs.into_iter().map(|g| g.file))
            .collect()
    };
    let sorted = files(&leader);
    exec(&mut s, "vacuum il").await;
    assert_eq!(files(&leader), sorted, "nothing left to sort");
    exec(&mut s, "vacuum reindex il").await;
    assert_ne!(files(&leader), sorted, "REINDEX re-sorts");
    let il_b = blocks(&mut s, "select count(*) from il where b = 7").await;
    assert!(il_b.contains("| 2 | 2 |"), "{il_b}");
}

/// On a cluster of several nodes, queries run as fragments on the compute nodes' servers:
/// a join on both tables' distkey reads each node's slices where they are, with no shuffle;
/// a join with an EVEN table moves it; the answers are those of a one-node cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_queries_match_one_node() {
    let setup = [
        "create table f (k int, v int) distkey(k)",
        "create table d (k int, w int) distkey(k)",
        "create table e (x int, k2 int) diststyle even",
        "create table a (k int, name varchar(8)) diststyle all",
        "insert into f select value % 97, value from generate_series(1, 3000)",
        "insert into d select value, value * 10 from generate_series(0, 96)",
        "insert into e select value, value % 50 from generate_series(1, 500)",
        "insert into a select value, 'n' || value from generate_series(0, 9)",
    ];
    let queries = [
        "select count(*), sum(f.v + d.w) from f join d on f.k = d.k",
        "select count(*), sum(f.v * e.x) from f join e on f.k = e.k2",
        "select k, count(*), sum(v) from f group by k order by k limit 5",
        "select k2, count(*) from e group by k2 order by 2 desc, 1 limit 3",
        "select a.name, count(*) from f join a on f.k = a.k group by a.name order by 1",
        "select count(*) from f full join e on f.k = e.k2 and f.v < e.x",
        "select v from f order by v desc limit 3",
        "select count(distinct k), min(v), max(v) from f",
    ];
    let mut answers = vec![];
    for nodes in [1, 2] {
        let dir = tempfile::tempdir().unwrap();
        let leader = open(dir.path(), nodes, 2);
        let mut s = leader.session("basalt", "dev").unwrap();
        for sql in setup {
            exec(&mut s, sql).await;
        }
        let mut got = vec![];
        for sql in queries {
            got.push(query(&mut s, sql).await);
        }
        if nodes > 1 {
            let colocated = query(&mut s, &format!("explain {}", queries[0])).await;
            assert!(colocated.contains("Hash Join DS_DIST_NONE"), "{colocated}");
            assert!(colocated.contains("Send to leader"), "{colocated}");
            assert!(!colocated.contains("Distribute"), "{colocated}");
            let moved = query(&mut s, &format!("explain {}", queries[1])).await;
            assert!(moved.contains("Hash Join DS_BCAST_INNER"), "{moved}");
            assert!(moved.contains("Broadcast"), "{moved}");
        }
        answers.push(got);
        leader.stop_compute().await;
    }
    assert_eq!(answers[0], answers[1]);
    assert!(answers[0][0].contains("3000"), "{}", answers[0][0]);
}

/// EXPLAIN labels each join with how its rows meet, as Redshift does: tables distributed on
/// the join key join in place, a big table on another key is redistributed (one side or
/// both), a small one is broadcast, and on one node an ALL table is read where it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_labels_joins_with_their_data_movement() {
    let label = async |s: &mut Session, sql: &str| {
        let plan = query(s, &format!("explain {sql}")).await;
        let line = plan
            .lines()
            .find(|l| l.contains("Join DS_") || l.contains("Nested Loop DS_"))
            .unwrap_or_else(|| panic!("no join in {plan}"))
            .to_string();
        (line, plan)
    };
    // Nodes of one slice place KEY rows as two virtual slices, to be co-located too.
    for (nodes, slices) in [(2, 2), (2, 1), (3, 1)] {
        let dir = tempfile::tempdir().unwrap();
        let leader = open(dir.path(), nodes, slices);
        let mut s = leader.session("basalt", "dev").unwrap();
        for sql in [
            "create table ka (k int, v int) distkey(k)",
            "create table kb (k int, w int) distkey(k)",
            "create table ea (x int, k int) diststyle even",
            "create table eb (x int, y int) diststyle even",
            "create table small (k int, n int) diststyle even",
            "insert into ka select value, value from generate_series(1, 150000)",
            "insert into kb select value, value from generate_series(1, 150000)",
            "insert into ea select value, value from generate_series(1, 150000)",
            "insert into eb select value, value from generate_series(1, 150000)",
            "insert into small select value, value from generate_series(1, 10)",
        ] {
            exec(&mut s, sql).await;
        }
        let (line, plan) = label(&mut s, "select count(*) from ka join kb on ka.k = kb.k").await;
        assert!(line.contains("DS_DIST_NONE"), "{nodes}x{slices}: {plan}");
        assert!(!plan.contains("Distribute"), "{nodes}x{slices}: {plan}");
        let n = query(&mut s, "select count(*) from ka join kb on ka.k = kb.k").await;
        assert!(n.contains("150000"), "{n}");
        // Grouping on the distkey needs no exchange either (one slice per node included).
        let grouped =
            "select count(*), count(distinct k) from (select k, count(*) from ka group by k)";
        let plan = query(&mut s, &format!("explain {grouped}")).await;
        assert!(
            !plan.contains("Distribute on: k"),
            "{nodes}x{slices}: {plan}"
        );
        let n = query(&mut s, grouped).await;
        assert!(n.contains("| 150000 | 150000 |"), "{n}");
        let (line, plan) = label(&mut s, "select count(*) from ka join ea on ka.k = ea.k").await;
        assert!(
            line.contains("DS_DIST_INNER") || line.contains("DS_DIST_OUTER"),
            "{plan}"
        );
        assert!(plan.contains("Distribute on:"), "{plan}");
        let (line, plan) = label(&mut s, "select count(*) from ea join eb on ea.x = eb.y").await;
        assert!(line.contains("DS_DIST_BOTH"), "{plan}");
        let (line, plan) = label(
            &mut s,
            "select count(*) from ka join small on ka.k = small.k",
        )
        .await;
        assert!(line.contains("DS_BCAST_INNER"), "{plan}");
        assert!(plan.contains("Broadcast"), "{plan}");
        // An ALL table joins where each node's copy is: nothing moves.
        exec(&mut s, "create table dim (k int, n int) diststyle all").await;
        exec(
            &mut s,
            "insert into dim select value, value * 2 from generate_series(1, 100)",
        )
        .await;
        let all_join = "select count(*), sum(dim.n) from ka join dim on ka.k = dim.k";
        let (line, plan) = label(&mut s, all_join).await;
        assert!(line.contains("DS_DIST_ALL_NONE"), "{plan}");
        assert!(!plan.contains("Broadcast"), "{plan}");
        let n = query(&mut s, all_join).await;
        assert!(n.contains("| 100   | 10100 |"), "{n}");
        // An ALL table bigger than the other side is the outer one: read as one copy in one
        // task, with the other side gathered to it (DS_DIST_ALL_INNER).
        exec(&mut s, "create table tiny (k int, m int) distkey(k)").await;
        exec(&mut s, "insert into tiny values (1, 1), (2, 2), (3, 3)").await;
        let (line, plan) = label(
            &mut s,
            "select count(*) from dim join tiny on dim.k = tiny.k",
        )
        .await;
        assert!(
            line.contains("DS_DIST_ALL_INNER"),
            "{nodes}x{slices}: {plan}"
        );
        let n = query(
            &mut s,
            "select count(*) from dim join tiny on dim.k = tiny.k",
        )
        .await;
        assert!(n.contains("| 3 "), "{n}");

        // A table placed with another hash function (another build) is not co-located any
        // more: the join redistributes, and the answer stays right.
        let mut txn = leader.catalog().begin();
        let kb = txn.state().table_by_name("public", "kb").unwrap().id;
        txn.table_mut(kb).unwrap().hash_fingerprint ^= 1;
        leader.catalog().commit(txn).unwrap();
        let (line, plan) = label(&mut s, "select count(*) from ka join kb on ka.k = kb.k").await;
        assert!(
            line.contains("DS_DIST_INNER") || line.contains("DS_DIST_OUTER"),
            "{plan}"
        );
        let n = query(&mut s, "select count(*) from ka join kb on ka.k = kb.k").await;
        assert!(n.contains("150000"), "{n}");
        leader.stop_compute().await;
    }

    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 1, 2);
    let mut s = leader.session("basalt", "dev").unwrap();
    exec(&mut s, "create table f (k int, v int) distkey(k)").await;
    exec(&mut s, "create table dim (k int, n int) diststyle all").await;
    exec(
        &mut s,
        "insert into f select value % 10, value from generate_series(1, 1000)",
    )
    .await;
    exec(
        &mut s,
        "insert into dim select value, value from generate_series(0, 9)",
    )
    .await;
    let (line, plan) = label(&mut s, "select count(*) from f join dim on f.k = dim.k").await;
    assert!(line.contains("DS_DIST_ALL_NONE"), "{plan}");
}

/// STL_DIST, STL_BCAST and STL_RETURN tell what each query moved between nodes: nothing for
/// a join in place, the redistributed side for a join on another key, the small side for a
/// broadcast; what reached the leader in every case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_steps_record_the_rows_they_move() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 2, 1);
    let mut s = leader.session("basalt", "dev").unwrap();
    for sql in [
        "create table ka (k int, v int) distkey(k)",
        "create table kb (k int, w int) distkey(k)",
        "create table ea (x int, k int) diststyle even",
        "create table small (k int, n int) diststyle even",
        "insert into ka select value, value from generate_series(1, 150000)",
        "insert into kb select value, value from generate_series(1, 150000)",
        "insert into ea select value, value from generate_series(1, 150000)",
        "insert into small select value, value from generate_series(1, 10)",
    ] {
        exec(&mut s, sql).await;
    }
    // Rows each kind of step received for the session's last query.
    let moved = async |s: &mut Session, sql: &str| -> [i64; 3] {
        let answer = query(s, sql).await;
        let mut out = [0; 3];
        for (i, table) in ["stl_dist", "stl_bcast", "stl_return"].iter().enumerate() {
            let n = query(
                s,
                &format!(
                    "select coalesce(sum(rows), 0) as n, coalesce(sum(bytes), 0) as b \
                     from {table} where query = (select max(query) from stl_query \
                     where querytxt = '{}')",
                    sql.replace('\'', "''")
                ),
            )
            .await;
            let cells: Vec<i64> = n
                .lines()
                .nth(3)
                .unwrap_or_default()
                .split('|')
                .filter_map(|c| c.trim().parse().ok())
                .collect();
            let [rows, bytes] = cells[..] else {
                panic!("{table}: {n}")
            };
            assert_eq!(rows > 0, bytes > 0, "{table} for {sql}: {n}");
            out[i] = rows;
        }
        assert!(!answer.is_empty());
        out
    };
    let [dist, bcast, ret] = moved(&mut s, "select count(*) from ka join kb on ka.k = kb.k").await;
    assert_eq!((dist, bcast), (0, 0), "a join in place moves no rows");
    assert!(ret > 0);
    let [dist, bcast, _] = moved(&mut s, "select count(*) from ka join ea on ka.k = ea.k").await;
    assert!(dist >= 150_000, "one side redistributed: {dist}");
    assert_eq!(bcast, 0);
    let [_, bcast, _] = moved(
        &mut s,
        "select count(*) from ka join small on ka.k = small.k",
    )
    .await;
    assert!(bcast >= 10, "the small side broadcast: {bcast}");
    leader.stop_compute().await;
}

/// COPY from a local path prefix: every file whose path starts with it, Redshift's delimited
/// text (pipe, `\N`, backslashes literal) or CSV, GZIP, IGNOREHEADER in every file, all in one
/// transaction: a bad row in any file leaves nothing of the COPY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_loads_every_file_under_a_prefix_in_one_transaction() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 2, 2);
    let mut s = leader.session("basalt", "dev").unwrap();
    exec(
        &mut s,
        "create table t (a int, b varchar(10), c date) distkey(a)",
    )
    .await;
    let data = tempfile::tempdir().unwrap();
    let d = data.path().display().to_string();
    let write = |name: &str, text: &[u8]| std::fs::write(data.path().join(name), text).unwrap();
    write("t_0.txt", b"a|b|c\n1|one|2024-01-01\n2|\\N|2024-01-02\n");
    // No newline at the end; a backslash is data without ESCAPE.
    write("t_1.txt", b"a|b|c\n3|th\\ree|2024-01-03");
    write("other.txt", b"9|nine|2024-01-09\n");
    exec(&mut s, &format!("copy t from '{d}/t_' ignoreheader 1")).await;
    let rows = query(&mut s, "select a, b, c from t order by a").await;
    assert!(rows.contains("| 2 |        | 2024-01-02 |"), "{rows}");
    assert!(rows.contains(r"| 3 | th\ree | 2024-01-03 |"), "{rows}");
    assert!(!rows.contains("nine"), "{rows}");

    let mut gz = flate2::write::GzEncoder::new(vec![], flate2::Compression::fast());
    gz.write_all(b"4,\"f,our\",2024-01-04\n5,,2024-01-05\n")
        .unwrap();
    write("csv_0.gz", &gz.finish().unwrap());
    exec(
        &mut s,
        &format!("copy t (a, b, c) from 'file://{d}/csv_' format as csv gzip compupdate off"),
    )
    .await;
    let rows = query(
        &mut s,
        "select count(*) as n, max(b) as b from t where a >= 4",
    )
    .await;
    assert!(rows.contains("| 2 | f,our |"), "{rows}");

    // The second file's bad date fails the COPY: the first file's row is not visible.
    write("bad_0.txt", b"6|six|2024-01-06\n");
    write("bad_1.txt", b"7|seven|not a date\n");
    assert_eq!(
        err(&mut s, &format!("copy t from '{d}/bad_'")).await,
        "22007"
    );
    let n = query(&mut s, "select count(*) as n from t").await;
    assert!(n.contains("| 5 |"), "{n}");
    // Errors name what is wrong.
    assert_eq!(
        err(&mut s, &format!("copy t from '{d}/nothing_here'")).await,
        "58P01"
    );
    assert_eq!(
        err(&mut s, &format!("copy t from '{d}/t_' lzop")).await,
        "0A000"
    );
    assert_eq!(err(&mut s, "copy t from 'http://host/x'").await, "22023");
    // The load ledger skips files loaded before, and says so.
    exec(&mut s, &format!("copy t from '{d}/t_' ignoreheader 1")).await;
    let notices = s.take_notices();
    assert!(
        notices.len() == 1 && notices[0].contains("skipped 2 file(s) already loaded"),
        "{notices:?}"
    );
    let mut outs = s.execute(&format!("copy t from '{d}/t_' force")).await;
    let Some(Err(e)) = outs.pop() else {
        panic!("the header line is not a row")
    };
    // The files load side by side (on two nodes here): the error names the file whose
    // header was found first.
    assert!(
        e.to_string().contains("t_0.txt") || e.to_string().contains("t_1.txt"),
        "{e}"
    );
    leader.stop_compute().await;
}

/// DISTSTYLE AUTO: a table is ALL while small; past the threshold the leader moves it in
/// one transaction, to KEY on a one-column primary key or else to EVEN, and records it in
/// SVL_AUTO_WORKER_ACTION. Rows and answers are the same before and after, and later
/// writes follow the new placement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_tables_move_off_all_as_they_grow() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = LeaderConfig::new(dir.path().to_path_buf());
    c.nodes = 2;
    c.slices_per_node = 2;
    c.auto_all_max_rows = 100;
    c.auto_dist_interval = None;
    let leader = Leader::open(c).unwrap();
    let mut s = leader.session("basalt", "dev").unwrap();
    exec(&mut s, "create table a (id int primary key, v int)").await;
    exec(&mut s, "create table b (x int, y int)").await;
    exec(
        &mut s,
        "insert into a select value, value from generate_series(1, 50)",
    )
    .await;
    assert_eq!(leader.auto_redistribute().await.unwrap(), 0);
    let meta = |name: &str| {
        leader
            .catalog()
            .snapshot()
            .table_by_name("public", name)
            .unwrap()
            .clone()
    };
    assert_eq!(meta("a").diststyle_text(), "AUTO(ALL)");
    exec(
        &mut s,
        "insert into a select value, value from generate_series(51, 1000)",
    )
    .await;
    exec(
        &mut s,
        "insert into b select value, value % 7 from generate_series(1, 1000)",
    )
    .await;
    let sums = "select (select count(*) || ' ' || sum(v) from a), \
                (select count(*) || ' ' || sum(y) from b), \
                (select count(*) from a join b on a.id = b.x)";
    let before = query(&mut s, sums).await;
    assert_eq!(leader.auto_redistribute().await.unwrap(), 2);
    assert_eq!(meta("a").diststyle_text(), "AUTO(KEY(id))");
    assert_eq!(meta("b").diststyle_text(), "AUTO(EVEN)");
    for name in ["a", "b"] {
        let t = meta(name);
        assert_eq!(t.data.slices.len(), 4, "{name} on every slice");
        assert_eq!(t.data.row_count(), 1000, "{name} holds each row once");
    }
    assert_eq!(query(&mut s, sums).await, before);
    let actions = query(
        &mut s,
        "select type, status, previous_state from svl_auto_worker_action \
         where status like 'Complete%' order by status",
    )
    .await;
    assert!(actions.contains("Complete: DISTSTYLE EVEN"), "{actions}");
    assert!(actions.contains("Complete: DISTSTYLE KEY(id)"), "{actions}");
    assert!(actions.contains("DISTSTYLE AUTO(ALL)"), "{actions}");
    exec(
        &mut s,
        "insert into b select value, 0 from generate_series(1001, 1010)",
    )
    .await;
    assert_eq!(scalar(&mut s, "select count(*) from b").await, "1010");
    assert_eq!(meta("b").data.row_count(), 1010);
    leader.stop_compute().await;
}

/// STV_LOAD_STATE shows a COPY while it runs (files and bytes done of the total, the file
/// being read) and forgets it when it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_copy_shows_its_progress() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 2, 2);
    let data = tempfile::tempdir().unwrap();
    let mut total = 0;
    for f in 0..6 {
        let text: String = (0..100_000)
            .map(|i| format!("{}|row {i} of file {f}\n", f * 100_000 + i))
            .collect();
        total += text.len();
        std::fs::write(data.path().join(format!("p_{f}.txt")), text).unwrap();
    }
    let mut s = leader.session("basalt", "dev").unwrap();
    exec(&mut s, "create table big (id int, name varchar(40))").await;
    let copy = format!("copy big from '{}/p_'", data.path().display());
    let mut loader = leader.session("basalt", "dev").unwrap();
    let task = tokio::spawn(async move { loader.execute(&copy).await.pop() });
    let mut seen = vec![];
    while !task.is_finished() {
        let rows = query(
            &mut s,
            "select num_files, num_files_complete, bytes_to_load, bytes_loaded, current_file like '%/p\\_%.txt' as f from stv_load_state",
        )
        .await;
        if rows.lines().count() > 4 {
            seen.push(rows);
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let out = task.await.unwrap();
    assert!(matches!(out, Some(Ok(_))), "{out:?}");
    assert!(!seen.is_empty(), "the COPY never showed in STV_LOAD_STATE");
    for rows in &seen {
        assert!(rows.contains("| 6         | "), "{rows}");
        assert!(rows.contains(&format!("| {total} ")), "{rows}");
        assert!(rows.contains("| true |"), "{rows}");
    }
    let after = query(&mut s, "select count(*) as n from stv_load_state").await;
    assert!(after.contains("| 0 |"), "{after}");
    leader.stop_compute().await;
}

/// A writer dropped before its rows are committed (a COPY share on a compute node that failed
/// or was canceled) removes the segments it wrote, on every node, and those of the writes
/// still under way once they end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_writer_removes_its_segments() {
    use datafusion::arrow::array::{Int32Array, RecordBatch, StringArray};
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 2, 2);
    let mut s = leader.session("basalt", "dev").unwrap();
    exec(
        &mut s,
        "create table w (id int, name varchar(10)) distkey(id)",
    )
    .await;
    let table = std::sync::Arc::new(
        leader
            .catalog()
            .snapshot()
            .table_by_name("public", "w")
            .unwrap()
            .clone(),
    );
    let batch = RecordBatch::try_new(
        table.arrow_schema(),
        vec![
            std::sync::Arc::new(Int32Array::from_iter_values(0..1000)),
            std::sync::Arc::new(StringArray::from_iter_values(
                (0..1000).map(|i| format!("n{i}")),
            )),
        ],
    )
    .unwrap();
    let plan: Vec<crate::dml::ColumnSource> =
        (0..2).map(crate::dml::ColumnSource::Source).collect();
    let writer = || crate::dml::TableWriter::with(table.clone(), leader.compute().clone(), 0, true);

    // Written, then dropped.
    let mut w = writer();
    w.push(&batch, &plan).await.unwrap();
    w.write_rest().await.unwrap();
    assert_eq!(segment_files(dir.path(), table.id), 4, "one per slice");
    drop(w);
    assert_eq!(segment_files(dir.path(), table.id), 0);

    // Dropped while its writes are under way: their files go when they end.
    let mut w = writer();
    w.push(&batch, &plan).await.unwrap();
    let _ = tokio::time::timeout(std::time::Duration::from_micros(1), w.write_rest()).await;
    drop(w);
    let gone = async {
        while segment_files(dir.path(), table.id) > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), gone)
        .await
        .expect("the files of the writes under way are removed");

    // Handed over (as a share's reported segments are), they stay.
    let mut w = writer();
    w.push(&batch, &plan).await.unwrap();
    w.write_rest().await.unwrap();
    let written = w.take_written();
    drop(w);
    assert_eq!(written.len(), 4);
    assert_eq!(segment_files(dir.path(), table.id), 4);
    leader.stop_compute().await;
}

/// A load into an empty table (COPY from files, COPY FROM STDIN, CTAS) records the same
/// statistics an ANALYZE of the table measures afterwards, on every shape and distribution
/// style: gathered from the rows as they are written, each row counted once (ALL tables too).
#[tokio::test]
async fn loads_gather_the_statistics_analyze_measures() {
    let columns = "i int, b bigint, sm smallint, n numeric(12,2), f float8, r real, v varchar(20), \
                   c char(4), d date, ts timestamp, bo boolean";
    // 300 rows: NULLs in every column, repeated values, negative numbers and -0.0.
    let mut csv = String::new();
    for k in 0..300i64 {
        let null = |s: String| if k % 17 == 3 { String::new() } else { s };
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{}\n",
            null((k * 7 % 101 - 50).to_string()),
            null((k * 1_000_003).to_string()),
            null((k % 9).to_string()),
            null(format!("{}.{:02}", k % 40 - 20, k % 100)),
            null(if k % 50 == 0 {
                "-0.0".into()
            } else {
                format!("{}", (k % 23) as f64 / 4.0)
            }),
            null(format!("{}", (k % 13) as f32 * 1.5)),
            null(format!("name{}", k % 37)),
            null(format!("c{}", k % 5)),
            null(format!("2024-{:02}-{:02}", k % 12 + 1, k % 28 + 1)),
            null(format!("2024-01-01 {:02}:{:02}:00", k % 24, k % 60)),
            null((k % 3 == 0).to_string()),
        ));
    }
    for (nodes, slices) in [(1, 1), (2, 2), (3, 2)] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rows.csv");
        std::fs::write(&file, &csv).unwrap();
        let leader = open(&dir.path().join("data"), nodes, slices);
        let mut s = leader.session("basalt", "dev").unwrap();
        let stats = |leader: &Leader, name: &str| {
            let state = leader.catalog().snapshot();
            let t = state.table_by_name("public", name).unwrap();
            let stats = t
                .stats
                .clone()
                .unwrap_or_else(|| panic!("{name} has statistics"));
            (t.stats_off(), stats.rows, stats.columns)
        };
        for style in ["diststyle even", "diststyle all", "distkey(v)", ""] {
            let shape = format!("{nodes}x{slices} {style}");
            exec(&mut s, "drop table if exists t_files, t_stdin, t_ctas").await;
            exec(&mut s, &format!("create table t_files ({columns}) {style}")).await;
            exec(
                &mut s,
                &format!("copy t_files from '{}' csv", file.display()),
            )
            .await;
            exec(&mut s, &format!("create table t_stdin ({columns}) {style}")).await;
            let out = s.execute("copy t_stdin from stdin with (format csv)").await;
            assert!(matches!(
                out.as_slice(),
                [Ok(StatementOutput::CopyIn { .. })]
            ));
            s.copy_data(csv.as_bytes()).await.unwrap();
            assert_eq!(s.copy_done().await.unwrap(), 300);
            exec(
                &mut s,
                &format!("create table t_ctas {style} as select * from t_files"),
            )
            .await;
            exec(&mut s, "set analyze_threshold_percent to 0").await;
            for name in ["t_files", "t_stdin", "t_ctas"] {
                let (off, rows, gathered) = stats(&leader, name);
                assert_eq!((off, rows), (0, 300), "{shape} {name}");
                exec(&mut s, &format!("analyze {name}")).await;
                let (_, rows, analyzed) = stats(&leader, name);
                assert_eq!(rows, 300, "{shape} {name}");
                assert_eq!(gathered, analyzed, "{shape} {name}");
            }
            exec(&mut s, "set analyze_threshold_percent to 10").await;
        }
    }
}
