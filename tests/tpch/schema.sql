-- TPC-H schema, Amazon Redshift dialect (DISTSTYLE / DISTKEY / SORTKEY / ENCODE).
-- Optional variant for run_tpch.py --load --schema redshift, for servers that accept Redshift DDL.
-- Choices follow the usual Redshift TPC-H layout (cf. AWS "Cloud DW benchmark derived from TPC-H"
-- DDL in awslabs/amazon-redshift-utils), adapted:
--   * the two big fact tables are co-located on the order key, so lineitem JOIN orders is local;
--   * lineitem is sorted on l_shipdate (range-restricted in Q1, Q3, Q6, Q7, Q14, Q15, Q20),
--     orders on o_orderdate (Q3, Q4, Q5, Q8, Q10) -> zone maps prune blocks;
--   * part/partsupp co-located on the part key (Q2, Q9, Q11, Q16, Q20 joins);
--   * customer distributed on its key (joins to orders on o_custkey redistribute the smaller side);
--   * nation, region and supplier are small dimensions -> DISTSTYLE ALL (a copy on every node).
-- PRIMARY KEY / FOREIGN KEY are informational only in Redshift (not enforced, used by the planner).
-- Column types as in schema_postgres.sql (VARCHAR for the spec's CHAR(n) columns).

CREATE TABLE region (
    r_regionkey  INTEGER       NOT NULL,
    r_name       VARCHAR(25)   NOT NULL,
    r_comment    VARCHAR(152)  NOT NULL,
    PRIMARY KEY (r_regionkey)
)
DISTSTYLE ALL
SORTKEY (r_regionkey);

CREATE TABLE nation (
    n_nationkey  INTEGER       NOT NULL,
    n_name       VARCHAR(25)   NOT NULL,
    n_regionkey  INTEGER       NOT NULL,
    n_comment    VARCHAR(152)  NOT NULL,
    PRIMARY KEY (n_nationkey)
)
DISTSTYLE ALL
SORTKEY (n_nationkey);

CREATE TABLE supplier (
    s_suppkey    INTEGER       NOT NULL,
    s_name       VARCHAR(25)   NOT NULL,
    s_address    VARCHAR(40)   NOT NULL,
    s_nationkey  INTEGER       NOT NULL,
    s_phone      VARCHAR(15)   NOT NULL,
    s_acctbal    DECIMAL(15,2) NOT NULL,
    s_comment    VARCHAR(101)  NOT NULL,
    PRIMARY KEY (s_suppkey)
)
DISTSTYLE ALL
SORTKEY (s_suppkey);

CREATE TABLE customer (
    c_custkey    INTEGER       NOT NULL,
    c_name       VARCHAR(25)   NOT NULL,
    c_address    VARCHAR(40)   NOT NULL,
    c_nationkey  INTEGER       NOT NULL,
    c_phone      VARCHAR(15)   NOT NULL,
    c_acctbal    DECIMAL(15,2) NOT NULL,
    c_mktsegment VARCHAR(10)   NOT NULL ENCODE BYTEDICT,
    c_comment    VARCHAR(117)  NOT NULL,
    PRIMARY KEY (c_custkey)
)
DISTSTYLE KEY
DISTKEY (c_custkey)
SORTKEY (c_custkey);

CREATE TABLE part (
    p_partkey     INTEGER       NOT NULL,
    p_name        VARCHAR(55)   NOT NULL,
    p_mfgr        VARCHAR(25)   NOT NULL ENCODE BYTEDICT,
    p_brand       VARCHAR(10)   NOT NULL ENCODE BYTEDICT,
    p_type        VARCHAR(25)   NOT NULL ENCODE BYTEDICT,
    p_size        INTEGER       NOT NULL,
    p_container   VARCHAR(10)   NOT NULL ENCODE BYTEDICT,
    p_retailprice DECIMAL(15,2) NOT NULL,
    p_comment     VARCHAR(23)   NOT NULL,
    PRIMARY KEY (p_partkey)
)
DISTSTYLE KEY
DISTKEY (p_partkey)
SORTKEY (p_partkey);

CREATE TABLE partsupp (
    ps_partkey    INTEGER       NOT NULL,
    ps_suppkey    INTEGER       NOT NULL,
    ps_availqty   INTEGER       NOT NULL,
    ps_supplycost DECIMAL(15,2) NOT NULL,
    ps_comment    VARCHAR(199)  NOT NULL,
    PRIMARY KEY (ps_partkey, ps_suppkey),
    FOREIGN KEY (ps_partkey) REFERENCES part (p_partkey),
    FOREIGN KEY (ps_suppkey) REFERENCES supplier (s_suppkey)
)
DISTSTYLE KEY
DISTKEY (ps_partkey)
SORTKEY (ps_partkey, ps_suppkey);

CREATE TABLE orders (
    o_orderkey      BIGINT        NOT NULL,
    o_custkey       INTEGER       NOT NULL,
    o_orderstatus   VARCHAR(1)    NOT NULL,
    o_totalprice    DECIMAL(15,2) NOT NULL,
    o_orderdate     DATE          NOT NULL ENCODE RAW,
    o_orderpriority VARCHAR(15)   NOT NULL ENCODE BYTEDICT,
    o_clerk         VARCHAR(15)   NOT NULL,
    o_shippriority  INTEGER       NOT NULL,
    o_comment       VARCHAR(79)   NOT NULL,
    PRIMARY KEY (o_orderkey),
    FOREIGN KEY (o_custkey) REFERENCES customer (c_custkey)
)
DISTSTYLE KEY
DISTKEY (o_orderkey)
COMPOUND SORTKEY (o_orderdate, o_orderkey);

CREATE TABLE lineitem (
    l_orderkey      BIGINT        NOT NULL,
    l_partkey       INTEGER       NOT NULL,
    l_suppkey       INTEGER       NOT NULL,
    l_linenumber    INTEGER       NOT NULL,
    l_quantity      DECIMAL(15,2) NOT NULL,
    l_extendedprice DECIMAL(15,2) NOT NULL,
    l_discount      DECIMAL(15,2) NOT NULL,
    l_tax           DECIMAL(15,2) NOT NULL,
    l_returnflag    VARCHAR(1)    NOT NULL,
    l_linestatus    VARCHAR(1)    NOT NULL,
    l_shipdate      DATE          NOT NULL ENCODE RAW,
    l_commitdate    DATE          NOT NULL,
    l_receiptdate   DATE          NOT NULL,
    l_shipinstruct  VARCHAR(25)   NOT NULL ENCODE BYTEDICT,
    l_shipmode      VARCHAR(10)   NOT NULL ENCODE BYTEDICT,
    l_comment       VARCHAR(44)   NOT NULL,
    PRIMARY KEY (l_orderkey, l_linenumber),
    FOREIGN KEY (l_orderkey) REFERENCES orders (o_orderkey),
    FOREIGN KEY (l_partkey, l_suppkey) REFERENCES partsupp (ps_partkey, ps_suppkey)
)
DISTSTYLE KEY
DISTKEY (l_orderkey)
COMPOUND SORTKEY (l_shipdate, l_orderkey);
