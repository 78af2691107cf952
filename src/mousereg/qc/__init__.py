"""Quality control: figures and HTML reports."""
