"""The municipality's configuration files: agencies, conference, lead rules, mail, lifecycle."""
