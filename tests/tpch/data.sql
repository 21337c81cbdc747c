-- A small, deterministic TPC-H-shaped data set (about SF 0.005) made with generate_series:
-- the sizes keep the ratios of the real tables, and the values cycle through the literals the
-- 22 queries filter on (segments, regions, nations, brands, containers, ship modes, dates from
-- 1992 to 1998), so nearly every query has rows to work on; a third of the customers have
-- no orders, as in TPC-H. Not the TPC-H generator's values:
-- results are compared between cluster shapes, not with the official answers.
insert into region
select value, case value when 0 then 'AFRICA' when 1 then 'AMERICA' when 2 then 'ASIA'
                         when 3 then 'EUROPE' else 'MIDDLE EAST' end, 'region ' || value
from generate_series(0, 4);

insert into nation
select value,
       case value % 25
         when 0 then 'ALGERIA' when 1 then 'ARGENTINA' when 2 then 'BRAZIL' when 3 then 'CANADA'
         when 4 then 'EGYPT' when 5 then 'ETHIOPIA' when 6 then 'FRANCE' when 7 then 'GERMANY'
         when 8 then 'INDIA' when 9 then 'INDONESIA' when 10 then 'IRAN' when 11 then 'IRAQ'
         when 12 then 'JAPAN' when 13 then 'JORDAN' when 14 then 'KENYA' when 15 then 'MOROCCO'
         when 16 then 'MOZAMBIQUE' when 17 then 'PERU' when 18 then 'CHINA' when 19 then 'ROMANIA'
         when 20 then 'SAUDI ARABIA' when 21 then 'VIETNAM' when 22 then 'RUSSIA'
         when 23 then 'UNITED KINGDOM' else 'UNITED STATES' end,
       case when value in (6, 7, 19, 22, 23) then 3 else value % 5 end,
       'nation ' || value
from generate_series(0, 24);

insert into supplier
select value, 'Supplier#' || lpad(value::varchar, 9, '0'), 'address ' || value, value % 25,
       (10 + value % 25) || '-' || lpad((value % 1000)::varchar, 3, '0') || '-555-0100',
       cast((value * 37) % 11000 - 1000 as decimal(15,2)) / 10,
       case when value % 50 = 7 then 'Customer stuff Complaints here' else 'supplier ' || value end
from generate_series(1, 50);

insert into customer
select value, 'Customer#' || lpad(value::varchar, 9, '0'), 'address ' || value, value % 25,
       (10 + value % 25) || '-' || lpad((value % 1000)::varchar, 3, '0') || '-555-0101',
       cast((value * 53) % 11000 - 1000 as decimal(15,2)) / 10,
       case value % 5 when 0 then 'BUILDING' when 1 then 'AUTOMOBILE' when 2 then 'MACHINERY'
                      when 3 then 'HOUSEHOLD' else 'FURNITURE' end,
       'customer ' || value
from generate_series(1, 750);

insert into part
select value,
       case value % 4 when 0 then 'forest green lace' when 1 then 'azure blush'
                      when 2 then 'green olive chiffon' else 'lemon rose' end || ' part ' || value,
       'Manufacturer#' || (1 + value % 5),
       'Brand#' || (1 + value % 5) || (1 + value % 5),
       case value % 6 when 0 then 'ECONOMY ANODIZED STEEL' when 1 then 'PROMO BRUSHED COPPER'
                      when 2 then 'MEDIUM POLISHED BRASS' when 3 then 'STANDARD PLATED TIN'
                      when 4 then 'SMALL BRUSHED BRASS' else 'LARGE BURNISHED NICKEL' end,
       1 + value % 50,
       case value % 8 when 0 then 'SM CASE' when 1 then 'MED BOX' when 2 then 'LG PACK'
                      when 3 then 'SM PKG' when 4 then 'MED BAG' when 5 then 'LG CASE'
                      when 6 then 'WRAP JAR' else 'SM BOX' end,
       cast(900 + value % 200 as decimal(15,2)),
       'part ' || value
from generate_series(1, 1000);

insert into partsupp
select p, 1 + (p + s * 13) % 50, 1 + (p * 7 + s) % 9999,
       cast(1 + (p * 11 + s) % 1000 as decimal(15,2)), 'partsupp ' || p || ' ' || s
from (select value as p from generate_series(1, 1000)) parts,
     (select value as s from generate_series(0, 3)) suppliers;

insert into orders
select value,
       1 + 3 * ((value * 7) % 250),
       case value % 3 when 0 then 'F' when 1 then 'O' else 'P' end,
       cast(1000 + (value * 97) % 400000 as decimal(15,2)) / 10,
       dateadd(day, (value * 13) % 2405, date '1992-01-01'),
       case value % 5 when 0 then '1-URGENT' when 1 then '2-HIGH' when 2 then '3-MEDIUM'
                      when 3 then '4-NOT SPECIFIED' else '5-LOW' end,
       'Clerk#' || lpad((value % 1000)::varchar, 9, '0'),
       0,
       case when value % 97 = 3 then 'special handling requests' else 'order ' || value end
from generate_series(1, 7500);

insert into lineitem
select o,
       1 + (o * 3 + l) % 1000,
       1 + (1 + (o * 3 + l) % 1000 + ((o + l) % 4) * 13) % 50,
       l,
       cast(1 + (o * l + o) % 90 as decimal(15,2)),
       cast(900 + (o * 3 + l) % 200 as decimal(15,2)) * (1 + (o + l) % 50),
       cast((o + l) % 11 as decimal(15,2)) / 100,
       cast((o * l) % 9 as decimal(15,2)) / 100,
       case when (o + l) % 4 = 0 then 'R' when (o + l) % 4 = 1 then 'A' else 'N' end,
       case when (o + l) % 2 = 0 then 'O' else 'F' end,
       dateadd(day, (o * 13) % 2405 + 1 + (o + l) % 100, date '1992-01-01'),
       dateadd(day, (o * 13) % 2405 + 30 + (o * l) % 60, date '1992-01-01'),
       dateadd(day, (o * 13) % 2405 + 2 + (o + l) % 120, date '1992-01-01'),
       case (o + l) % 4 when 0 then 'DELIVER IN PERSON' when 1 then 'COLLECT COD'
                        when 2 then 'NONE' else 'TAKE BACK RETURN' end,
       case (o + l) % 7 when 0 then 'MAIL' when 1 then 'SHIP' when 2 then 'AIR'
                        when 3 then 'AIR REG' when 4 then 'TRUCK' when 5 then 'RAIL' else 'FOB' end,
       'lineitem ' || o || ' ' || l
from (select value as o from generate_series(1, 7500)) orders,
     (select value as l from generate_series(1, 4)) lines;

analyze;
