"""Downloads: deployment packages (enrolment keys, installers, the shareable installer link)."""
