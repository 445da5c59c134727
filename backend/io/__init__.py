"""Job loading: the job folder of DESIGN.md and other common multi-view layouts."""
