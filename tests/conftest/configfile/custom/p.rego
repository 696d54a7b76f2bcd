package conftest

warn contains "from config" if true
