// MariaDB Connector/C (Debian libmariadb-dev): the client API and its error codes.
#include <mariadb/mysql.h>
#include <mariadb/mysqld_error.h>
#include <mariadb/errmsg.h>
