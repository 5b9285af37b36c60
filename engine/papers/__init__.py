"""Meeting papers: agendas per agency, the coordinator's version, lifecycle notices."""
