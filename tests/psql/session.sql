\set ON_ERROR_STOP 0
\pset null NULL
create table psql_t (id int not null primary key, name varchar(20) default 'none', amount decimal(12,2), day date, code char(3), n bigint identity(1,1)) diststyle key distkey(id) sortkey(day);
insert into psql_t values (1, 'one', 1.50, '2024-01-01'), (2, 'two', NULL, '2024-01-02'), (3, NULL, 3.25, NULL);
select * from psql_t order by id;
\dt
\d psql_t
\dn
select count(*) as n, sum(amount) as total from psql_t;
select 1/0;
select * from no_such_table;
begin;
delete from psql_t where id = 1;
rollback;
select count(*) from psql_t;
\copy psql_t (id, name, amount, day) from 'tests/psql/rows.csv' with (format csv, header true)
select id, name from psql_t where id > 3 order by id;
drop table psql_t;
select 1 as a, 2 as a, null, null, id, id, count(*) from (select 7 as id) t group by id;
